//go:build unix

package config

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// loadWithin runs Load and fails the test if it has not returned within d:
// the files below used to hang it or grow it without bound.
func loadWithin(t *testing.T, ctx context.Context, d time.Duration, path string, getenv func(string) string) (*Config, error) {
	t.Helper()
	type result struct {
		cfg *Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		cfg, err := Load(ctx, path, getenv)
		done <- result{cfg, err}
	}()
	select {
	case r := <-done:
		return r.cfg, r.err
	case <-time.After(d):
		t.Fatalf("Load(%s) still running after %v", path, d)
		return nil, nil
	}
}

// TestLoadFIFO: a FIFO with no writer blocks a plain open forever; as the
// config, a password_file, a token file or a TLS file it is an error at
// once, under its key.
func TestLoadFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	notRegular := fifo + " is not a regular file (a FIFO)"

	_, err := loadWithin(t, t.Context(), 5*time.Second, fifo, env(nil))
	if want := "config: " + notRegular; err == nil || err.Error() != want {
		t.Errorf("Load(FIFO) error = %v, want %q", err, want)
	}

	path := filepath.Join(dir, "config.yml")
	doc := "instances:\n" +
		"  - name: a\n    addr: 'x:1'\n    password_file: fifo\n" +
		"    tls: {ca_file: fifo}\n" +
		"    remediation: {password_file: fifo}\n" +
		"slack: {app_token_file: fifo}\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadWithin(t, t.Context(), 5*time.Second, path, env(nil))
	want := "instances[0].password_file: " + notRegular + "\n" +
		"instances[0].tls.ca_file: " + notRegular + "\n" +
		"instances[0].remediation.password_file: " + notRegular + "\n" +
		"slack.app_token_file: " + notRegular
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

// TestLoadDevZero: --config /dev/zero grew the process to 24 GB before.
func TestLoadDevZero(t *testing.T) {
	_, err := loadWithin(t, t.Context(), 5*time.Second, "/dev/zero", env(nil))
	if want := "config: /dev/zero is not a regular file (a character device)"; err == nil || err.Error() != want {
		t.Errorf("Load(/dev/zero) error = %v, want %q", err, want)
	}
}

// TestLoadConfigCap: a config over maxConfigFile is refused before it is
// read, by one byte or by a terabyte (sparse). That a file of exactly the
// cap is read is regularfile's test.
func TestLoadConfigCap(t *testing.T) {
	over := filepath.Join(t.TempDir(), "over.yml")
	if err := os.WriteFile(over, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int64{maxConfigFile + 1, 1 << 40} {
		if err := os.Truncate(over, size); err != nil {
			t.Fatal(err)
		}
		_, err := loadWithin(t, t.Context(), 5*time.Second, over, env(nil))
		if want := "config: " + over + " is larger than 4 MiB"; err == nil || err.Error() != want {
			t.Errorf("Load(%d bytes) error = %v, want %q", size, err, want)
		}
	}
}

// TestLoadStopped: a done context stops Load between two files, and the
// error says so with the cause (the signal, for the CLI), not the problems
// of a half-read config.
func TestLoadStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Load(ctx, "testdata/good.yml", env(nil))
	if want := "config: loading testdata/good.yml stopped: context canceled"; err == nil || err.Error() != want {
		t.Errorf("Load(cancelled) error = %v, want %q", err, want)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Load(cancelled) error does not wrap context.Canceled")
	}

	// Mid-load: the signal comes while the first instance's password_env
	// is looked up. The second instance's password_file is a FIFO that a
	// writer waits on: opening it for reading would release the writer.
	// Stopped, Load never opens it; not stopped, it opens it and refuses
	// it.
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yml")
	doc := "instances:\n" +
		"  - {name: a, addr: 'x:1', password_env: A_PASSWORD}\n" +
		"  - {name: b, addr: 'x:2', password_file: fifo}\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{})
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // blocks until a reader opens
		if err == nil {
			f.Close()
		}
		close(opened)
	}()

	signal := errors.New("interrupt signal received")
	ctx, stop := context.WithCancelCause(t.Context())
	defer stop(nil)
	_, err = loadWithin(t, ctx, 5*time.Second, path, func(name string) string {
		if name == "A_PASSWORD" {
			stop(signal)
			return "a-pw"
		}
		return ""
	})
	if want := "config: loading " + path + " stopped: interrupt signal received"; err == nil || err.Error() != want {
		t.Errorf("Load(stopped mid-load) error = %v, want %q", err, want)
	}
	if !errors.Is(err, signal) {
		t.Errorf("Load(stopped mid-load) error does not wrap its cause")
	}
	select {
	case <-opened:
		t.Errorf("Load opened the FIFO after it was stopped")
	case <-time.After(100 * time.Millisecond):
	}

	_, err = loadWithin(t, t.Context(), 5*time.Second, path, env(map[string]string{"A_PASSWORD": "a-pw"}))
	if want := "instances[1].password_file: " + fifo + " is not a regular file (a FIFO)"; err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %q", err, want)
	}
	select {
	case <-opened:
	case <-time.After(5 * time.Second):
		t.Errorf("Load did not open the FIFO: the check above proves nothing")
	}
}
