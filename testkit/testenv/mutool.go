package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// EncryptPDF writes src encrypted by `mutool clean` with method ("aes-256",
// "aes-128", "rc4-128", ...), user password user (may be empty: anyone
// opens it) and owner password owner to a file in t.TempDir(), and
// returns its path. Without mutool the test is skipped, or fails when CI
// is set (scripts/test.sh installs mupdf-tools).
func EncryptPDF(t testing.TB, src, method, user, owner string) string {
	t.Helper()
	mutool, err := exec.LookPath("mutool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mutool not installed (required when CI is set): %v", err)
		}
		t.Skipf("mutool not installed: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "enc-"+method+".pdf")
	args := []string{"clean", "-E", method, "-O", owner}
	if user != "" {
		args = append(args, "-U", user)
	}
	out, err := exec.Command(mutool, append(args, src, dst)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mutool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dst
}
