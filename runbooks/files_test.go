//go:build unix

package runbooks

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestLoadRefusesFilesThatHang: a FIFO named *.md would block os.ReadFile
// until something writes to it, and a huge one would be read whole. Both are
// errors that name the file, at once.
func TestLoadRefusesFilesThatHang(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.md")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.md")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, 1<<40); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Load(dir)
		done <- err
	}()
	select {
	case err := <-done:
		want := big + " is larger than 1 MiB\n" + fifo + " is not a regular file (a FIFO)"
		if err == nil || err.Error() != want {
			t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load still running after 5s")
	}
}
