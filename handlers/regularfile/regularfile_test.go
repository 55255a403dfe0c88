//go:build unix

package regularfile

import (
	"bytes"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	want := []byte("pw\n")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, max := range []int64{3, 4, 1 << 20} {
		got, err := Read(path, max)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Read(max %d) = %q, %v; want %q", max, got, err, want)
		}
	}
	// A link is followed to the file.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if got, err := Read(link, 10); err != nil || !bytes.Equal(got, want) {
		t.Errorf("Read(symlink) = %q, %v", got, err)
	}
}

// TestReadProcFile: files in /proc are regular but say they are empty; the
// cap, not the size, bounds the read.
func TestReadProcFile(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	b, err := Read("/proc/self/status", 1<<20)
	if err != nil || !bytes.Contains(b, []byte("Name:")) {
		t.Errorf("Read(/proc/self/status) = %d bytes, %v", len(b), err)
	}
	if _, err := Read("/proc/self/status", 10); err == nil || err.Error() != "/proc/self/status is larger than 10 bytes" {
		t.Errorf("Read(/proc/self/status, 10) error = %v", err)
	}
}

func TestReadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(path, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path, 4); err == nil || err.Error() != path+" is larger than 4 bytes" {
		t.Errorf("Read(5 bytes, max 4) error = %v", err)
	}
	// A sparse 1 TiB file is refused from its size, before any read: this
	// test would take hours otherwise.
	if err := os.Truncate(path, 1<<40); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Read(path, 4<<20)
	if err == nil || err.Error() != path+" is larger than 4 MiB" {
		t.Errorf("Read(1 TiB) error = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Read(1 TiB) took %v", d)
	}
}

func TestReadNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	for _, tc := range []struct{ path, want string }{
		// No writer: a blocking open would wait forever.
		{fifo, fifo + " is not a regular file (a FIFO)"},
		{sock, "open " + sock + ": no such device or address"},
		{"/dev/zero", "/dev/zero is not a regular file (a character device)"},
		{"/dev/null", "/dev/null is not a regular file (a character device)"},
		{dir, dir + " is not a regular file (a directory)"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := Read(tc.path, 1<<20)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || err.Error() != tc.want {
				t.Errorf("Read(%s) error = %v, want %q", tc.path, err, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Read(%s) still blocked after 5s", tc.path)
		}
	}
}

func TestReadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing")
	_, err := Read(path, 10)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("Read(missing) error = %v, want one that wraps fs.ErrNotExist and names the path", err)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0 bytes", 100: "100 bytes", 1024: "1 KiB", 64 << 10: "64 KiB", 1536: "1536 bytes",
		1 << 20: "1 MiB", 4 << 20: "4 MiB", 3 << 19: "1536 KiB",
	} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}
