//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runWithin runs the CLI and fails the test if it has not returned within
// d.
func runWithin(t *testing.T, ctx context.Context, d time.Duration, getenv func(string) string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, args, getenv, &out, &errOut) }()
	select {
	case c := <-code:
		return result{c, out.String(), errOut.String()}
	case <-time.After(d):
		t.Fatalf("run %q still running after %v", args, d)
		return result{}
	}
}

func TestLogFormatFlag(t *testing.T) {
	cfg := writeConfig(t, "instances:\n"+instanceYAML("cache-1", "127.0.0.1:1"))
	res := runCLI(t, nil, "list", "--config", cfg, "--log-format", "bogus")
	if want := "redisbot: --log-format must be json, text or auto, not \"bogus\"\n"; res.code != exitError || res.stderr != want {
		t.Errorf("--log-format bogus: exit %d, stderr %q; want %d, %q", res.code, res.stderr, exitError, want)
	}
	for _, f := range []string{"json", "text", "auto", "JSON", "Text"} {
		if err := (options{color: "auto", logFormat: f}).check(); err != nil {
			t.Errorf("--log-format %s: %v", f, err)
		}
	}
}

// TestRunRefusesFilesThatHang: what hung or grew the process before (a FIFO
// as password_file, /dev/zero as the config or a CA file) is an error at
// once, exit 3, naming the key.
func TestRunRefusesFilesThatHang(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	withFIFO := writeConfig(t, "instances:\n"+instanceYAML("cache-1", "127.0.0.1:1", "password_file: "+fifo))
	withZeroCA := writeConfig(t, "instances:\n"+instanceYAML("cache-1", "127.0.0.1:1", "tls: {ca_file: /dev/zero}"))
	for _, tc := range []struct {
		config, stderr string
	}{
		{withFIFO, "redisbot: instances[0].password_file: " + fifo + " is not a regular file (a FIFO)\n"},
		{withZeroCA, "redisbot: instances[0].tls.ca_file: /dev/zero is not a regular file (a character device)\n"},
		{"/dev/zero", "redisbot: config: /dev/zero is not a regular file (a character device)\n"},
	} {
		res := runWithin(t, t.Context(), 5*time.Second, func(string) string { return "" }, "list", "--config", tc.config)
		if res.code != exitError || res.stderr != tc.stderr {
			t.Errorf("--config %s: exit %d, stderr %q; want %d, %q", tc.config, res.code, res.stderr, exitError, tc.stderr)
		}
	}
}

// TestRunStopsWhileLoading: a signal while the config loads ends run at
// once with a clear error, even when the load itself cannot make progress
// (here an environment lookup that blocks, standing for a read the kernel
// will not interrupt).
func TestRunStopsWhileLoading(t *testing.T) {
	cfg := writeConfig(t, "instances:\n"+instanceYAML("cache-1", "127.0.0.1:1", "password_env: STUCK_PW"))
	release := make(chan struct{})
	defer close(release)
	asked := make(chan struct{})
	getenv := func(name string) string {
		if name == "STUCK_PW" {
			close(asked)
			<-release
			return "pw"
		}
		return ""
	}
	// signal.NotifyContext cancels with this cause.
	ctx, stop := context.WithCancelCause(t.Context())
	defer stop(nil)
	go func() {
		<-asked
		stop(errors.New("interrupt signal received"))
	}()
	res := runWithin(t, ctx, 5*time.Second, getenv, "list", "--config", cfg)
	want := "redisbot: config: loading " + cfg + " stopped: interrupt signal received\n"
	if res.code != exitError || res.stderr != want {
		t.Errorf("exit %d, stderr %q; want %d, %q", res.code, res.stderr, exitError, want)
	}
	if strings.Contains(res.stdout, "cache-1") {
		t.Errorf("run went on after the signal: %s", res.stdout)
	}
}
