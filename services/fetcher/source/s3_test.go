package source_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/pdfpipe/pdfpipe/services/fetcher/source"
	"github.com/pdfpipe/pdfpipe/testkit/testenv"
)

func TestOpenS3(t *testing.T) {
	s3 := testenv.StartS3(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	admin, err := minio.New(s3.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(s3.AccessKey, s3.SecretKey, ""),
	})
	if err != nil {
		t.Fatalf("minio.New: %v", err)
	}
	if err := admin.MakeBucket(ctx, "docs", minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("MakeBucket: %v", err)
	}
	const maxBytes = 64 << 10
	doc := pdfBytes(3, 40<<10)
	objects := map[string][]byte{
		"in/a.pdf":     doc,
		"in/big.pdf":   pdfBytes(0, maxBytes+1),
		"in/page.html": []byte(htmlPage),
		"in/empty.pdf": nil,
	}
	for key, body := range objects {
		if _, err := admin.PutObject(ctx, "docs", key, bytes.NewReader(body), int64(len(body)),
			minio.PutObjectOptions{ContentType: "application/pdf"}); err != nil {
			t.Fatalf("PutObject %s: %v", key, err)
		}
	}

	// An address nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := l.Addr().String()
	l.Close()

	good := source.S3Config{Endpoint: s3.Endpoint, AccessID: s3.AccessKey, AccessKey: s3.SecretKey, DefaultBucket: "docs"}
	withURLEndpoint := good
	withURLEndpoint.Endpoint = "http://" + s3.Endpoint
	wrongSecret := good
	wrongSecret.AccessKey = "WRONGSECRETvalue"
	wrongID := good
	wrongID.AccessID = "WRONGIDvalue"
	dead := good
	dead.Endpoint = deadAddr

	tests := []struct {
		name     string
		cfg      source.S3Config
		url      string
		wantOpen error
		wantRead error
		wantBody []byte
		wantText string
	}{
		{name: "object", cfg: good, url: "s3://docs/in/a.pdf", wantBody: doc},
		{name: "endpoint as URL", cfg: withURLEndpoint, url: "s3://docs/in/a.pdf", wantBody: doc},
		{name: "default bucket", cfg: good, url: "s3:///in/a.pdf", wantBody: doc},
		{name: "missing key", cfg: good, url: "s3://docs/in/nope.pdf", wantOpen: source.ErrNotFound,
			wantText: "NoSuchKey"},
		{name: "missing bucket", cfg: good, url: "s3://nobucket/a.pdf", wantOpen: source.ErrNotFound,
			wantText: "NoSuchBucket"},
		{name: "wrong secret", cfg: wrongSecret, url: "s3://docs/in/a.pdf", wantOpen: source.ErrForbidden,
			wantText: "BUCKET_ACCESS_KEY"},
		{name: "unknown access id", cfg: wrongID, url: "s3://docs/in/a.pdf", wantOpen: source.ErrForbidden,
			wantText: "BUCKET_ACCESS_ID"},
		{name: "endpoint unreachable", cfg: dead, url: "s3://docs/in/a.pdf", wantOpen: source.ErrTransient,
			wantText: "connection refused"},
		{name: "too large", cfg: good, url: "s3://docs/in/big.pdf", wantOpen: source.ErrTooLarge},
		{name: "not a pdf", cfg: good, url: "s3://docs/in/page.html", wantRead: source.ErrNotPDF},
		{name: "empty", cfg: good, url: "s3://docs/in/empty.pdf", wantRead: source.ErrEmpty},
		{name: "no key", cfg: good, url: "s3://docs/", wantOpen: source.ErrBadURL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := source.New(source.Options{MaxBytes: maxBytes, HTTPTimeout: 10 * time.Second, S3: tc.cfg})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			obj, err := o.Open(ctx, tc.url)
			if tc.wantOpen != nil {
				checkS3Err(t, err, tc.wantOpen, tc.wantText)
				return
			}
			if err != nil {
				t.Fatalf("Open: got %v, want no error", err)
			}
			defer obj.Body.Close()
			got, err := io.ReadAll(obj.Body)
			if tc.wantRead != nil {
				checkS3Err(t, err, tc.wantRead, tc.wantText)
				return
			}
			if err != nil {
				t.Fatalf("read: got %v, want no error", err)
			}
			if !bytes.Equal(got, tc.wantBody) {
				t.Errorf("got %d bytes, want %d", len(got), len(tc.wantBody))
			}
			if obj.Size != int64(len(tc.wantBody)) {
				t.Errorf("got Size %d, want %d", obj.Size, len(tc.wantBody))
			}
			if obj.ContentType != "application/pdf" {
				t.Errorf("got ContentType %q, want %q", obj.ContentType, "application/pdf")
			}
		})
	}

	// Credentials never appear in error text.
	t.Run("no secrets in errors", func(t *testing.T) {
		o, err := source.New(source.Options{S3: wrongSecret})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		_, err = o.Open(ctx, "s3://docs/in/a.pdf")
		if err == nil {
			t.Fatal("got no error, want one")
		}
		for _, secret := range []string{wrongSecret.AccessKey, s3.SecretKey} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error text %q contains a secret", err)
			}
		}
	})
}

func checkS3Err(t *testing.T, err, want error, wantText string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	if got, wantPerm := source.Permanent(err), want != source.ErrTransient; got != wantPerm {
		t.Errorf("Permanent(%v): got %v, want %v", err, got, wantPerm)
	}
	if !strings.Contains(err.Error(), wantText) {
		t.Errorf("error text %q: want it to contain %q", err, wantText)
	}
}
