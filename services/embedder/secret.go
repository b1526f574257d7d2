package embedder

import (
	"fmt"
	"os"
	"strings"
)

// readSecretFile reads a key from a mounted secret file (Kubernetes
// secret volume, Docker secret). The error never contains the content.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("EMBEDDING_API_KEY_FILE: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}
