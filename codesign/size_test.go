package codesign

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A file over MaxFileSize is not hashed: a peer's executable is a file the
// peer chose, and hashing it costs its size in time.
func TestMaxFileSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(MaxFileSize + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	v := NewVerifier(t.TempDir())
	if _, err := v.Verify(f, path); !errors.Is(err, ErrFileTooLarge) {
		t.Errorf("Verify of %d bytes: %v, want ErrFileTooLarge", MaxFileSize+1, err)
	}
	if _, err := v.Digest(f); !errors.Is(err, ErrFileTooLarge) {
		t.Errorf("Digest of %d bytes: %v, want ErrFileTooLarge", MaxFileSize+1, err)
	}
}
