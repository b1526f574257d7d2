package pipeline

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// SecretKeySize is the length of PDFPIPE_SECRET_KEY once decoded: an
// AES-256 key.
const SecretKeySize = 32

// sealMagic starts every sealed value; a stored JSON record starts with
// '{', so the two cannot be confused.
var sealMagic = []byte("pps1")

// Errors of sealed secrets. Their texts never contain a secret.
var (
	// ErrSealed: a sealed value was read by a process without the key
	// (PDFPIPE_SECRET_KEY unset there).
	ErrSealed = errors.New("secret is sealed but this process has no PDFPIPE_SECRET_KEY")
	// ErrNotSealed: a plain value was read by a process that seals
	// (the writer had no PDFPIPE_SECRET_KEY): refused, every service must
	// share one key.
	ErrNotSealed = errors.New("secret is stored unsealed but this process seals secrets: give every service the same PDFPIPE_SECRET_KEY")
	// ErrUnseal: the value does not open with this key and this task: a
	// different key, a value moved from another task, or tampering.
	ErrUnseal = errors.New("secret does not open with this PDFPIPE_SECRET_KEY for this task (other key, other task, or altered)")
)

// IsSealError says whether err comes from sealing: a key missing, another
// key, or a record sealed for another place. Retrying does not help; the
// services' PDFPIPE_SECRET_KEY settings must be made to agree.
func IsSealError(err error) bool {
	return errors.Is(err, ErrSealed) || errors.Is(err, ErrNotSealed) || errors.Is(err, ErrUnseal)
}

// Sealer encrypts secrets with AES-256-GCM before they enter KV. The
// associated data binds each value to its bucket key (task and kind), so a
// sealed value copied to another task's key does not open.
type Sealer struct {
	aead  cipher.AEAD
	store string // hex key for the embedded server's store encryption
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != SecretKeySize {
		return nil, fmt.Errorf("secret key is %d bytes, want %d", len(key), SecretKeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	// The store key is derived, so the sealing key itself is never handed
	// to the server.
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("pdfpipe jetstream store key v1"))
	return &Sealer{aead: aead, store: hex.EncodeToString(mac.Sum(nil))}, nil
}

// ParseSecretKey decodes PDFPIPE_SECRET_KEY: 64 hex digits or the base64
// (standard or URL alphabet, padded or not) of 32 bytes. The error never
// contains the value.
func ParseSecretKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == SecretKeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == SecretKeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want 32 random bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`), got %d characters", len(s))
}

// NewSecretKey returns 32 random bytes, hex encoded (a value for
// PDFPIPE_SECRET_KEY or its file).
func NewSecretKey() string {
	b := make([]byte, SecretKeySize)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// StoreKey is the key for the embedded server's JetStream store
// encryption (nats-server's JetStreamKey), derived from the sealing key.
func (s *Sealer) StoreKey() string { return s.store }

// LogValue shows only that secrets are sealed.
func (s *Sealer) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("off")
	}
	return slog.StringValue("aes-256-gcm")
}

// Seal encrypts plain for the bucket key aad: magic, 12-byte nonce,
// ciphertext and tag.
func (s *Sealer) Seal(plain []byte, aad string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	out := append(bytes.Clone(sealMagic), nonce...)
	return s.aead.Seal(out, nonce, plain, []byte(aad))
}

// Open decrypts a value Seal made for the same aad.
func (s *Sealer) Open(sealed []byte, aad string) ([]byte, error) {
	rest, ok := bytes.CutPrefix(sealed, sealMagic)
	if !ok || len(rest) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, ErrUnseal
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, rest[:n], rest[n:], []byte(aad))
	if err != nil {
		return nil, ErrUnseal
	}
	return plain, nil
}

// IsSealed says whether a stored value was sealed.
func IsSealed(v []byte) bool { return bytes.HasPrefix(v, sealMagic) }
