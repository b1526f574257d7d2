package pipeline

import (
	"encoding/base64"
	"strings"
)

// Token turns a task id into one subject token and KV key. Ids made of
// letters, digits, '-' and '_' (UUIDs, the backend's DocIDs) are used as
// they are; anything else is base64url-encoded behind a '=' prefix, which
// no plain id can start with, so two ids never share a token.
func Token(taskID string) string {
	if taskID != "" && plain(taskID) {
		return taskID
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(taskID))
}

// TaskIDFromToken reverses Token.
func TaskIDFromToken(tok string) (string, error) {
	if !strings.HasPrefix(tok, "=") {
		return tok, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok[1:])
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
