// Package amtest runs a real Prometheus Alertmanager for tests: built from
// its Go module on first use (cached between runs under the user's cache
// directory), started on a free loopback port with a config the test gives,
// and driven through its API as Prometheus would.
package amtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version is the Alertmanager the tests run.
const Version = "v0.35.0"

const module = "github.com/prometheus/alertmanager"

// Binary returns the path of the Alertmanager binary, building it the first
// time. Test binaries of several packages may build at once: a lock file
// makes the others wait for the first. A build that fails fails the test
// with the reason: the tests never skip for want of Alertmanager.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, binErr = build() })
	if binErr != nil {
		t.Fatalf("build Alertmanager %s: %v", Version, binErr)
	}
	return binPath
}

var (
	buildOnce sync.Once
	binPath   string
	binErr    error
)

// build compiles Alertmanager into <user cache>/redisbot-test/alertmanager-<Version>.
//
// `go install module/cmd/alertmanager@version` does not work: the module
// zip lacks the web UI's built assets (ui/app/dist), which ui/web.go
// embeds. So the module's source is copied from the module cache, a
// placeholder page stands in for the UI (the tests use only the API), and
// the copy is built with the module's own go.sum.
func build() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "redisbot-test", "alertmanager-"+Version)
	bin := filepath.Join(dir, "alertmanager")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(dir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() {
		return bin, nil
	}

	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build Alertmanager: %w", err)
	}
	work, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	env := append(os.Environ(), "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	run := func(dir string, args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir, cmd.Env = dir, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, tail(stderr.String(), 2000))
		}
		return out, nil
	}
	out, err := run(work, "mod", "download", "-json", module+"@"+Version)
	if err != nil {
		return "", err
	}
	var dl struct{ Dir, Error string }
	if err := json.Unmarshal(out, &dl); err != nil || dl.Dir == "" {
		return "", fmt.Errorf("go mod download: no module directory (%s)", dl.Error)
	}
	src := filepath.Join(work, "src")
	if err := os.CopyFS(src, os.DirFS(dl.Dir)); err != nil {
		return "", fmt.Errorf("copy the module: %w", err)
	}
	page := []byte("<!doctype html><title>Alertmanager</title><p>Built for redisbot's tests, without its web UI.</p>\n")
	for _, d := range []string{"elm", "mantine"} {
		p := filepath.Join(src, "ui", "app", "dist", d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(p, "index.html"), page, 0o644); err != nil {
			return "", err
		}
	}
	tmp := filepath.Join(work, "alertmanager")
	if _, err := run(src, "build", "-trimpath", "-o", tmp, "./cmd/alertmanager"); err != nil {
		return "", err
	}
	return bin, os.Rename(tmp, bin)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Server is a running Alertmanager.
type Server struct {
	// URL is its base URL, ending in "/".
	URL  string
	cmd  *exec.Cmd
	logs *bytes.Buffer
	mu   *sync.Mutex
}

// Start runs Alertmanager with config (its YAML) on a free loopback port,
// with its own storage, without clustering, until the test ends.
func Start(t testing.TB, config string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	s := &Server{URL: "http://" + addr + "/", logs: &bytes.Buffer{}, mu: &sync.Mutex{}}
	s.cmd = exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=", // no gossip: one instance
		"--log.level=debug",
	)
	w := lockedWriter{s.mu, s.logs}
	s.cmd.Stdout, s.cmd.Stderr = w, w
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start Alertmanager: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("Alertmanager's log:\n%s", tail(s.Logs(), 8000))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.URL + "-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-exited:
			t.Fatalf("Alertmanager exited at start:\n%s", s.Logs())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("Alertmanager not ready within 20s:\n%s", s.Logs())
		}
	}
}

// Logs returns what Alertmanager logged so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Fire posts alerts to POST /api/v2/alerts, as Prometheus does. Each is a
// JSON object of api/v2/models.PostableAlert.
func (s *Server) Fire(t testing.TB, alerts ...any) {
	t.Helper()
	body, err := json.Marshal(alerts)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(s.URL+"api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /api/v2/alerts: %s: %s", resp.Status, b)
	}
}

// Alert is one alert of GET /api/v2/alerts (api/v2/models.GettableAlert).
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	UpdatedAt   time.Time         `json:"updatedAt"`
	Fingerprint string            `json:"fingerprint"`
	Status      struct {
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
	Receivers []struct {
		Name string `json:"name"`
	} `json:"receivers"`
}

// Alerts returns the alerts Alertmanager holds now, which leaves out those
// that have ended.
func (s *Server) Alerts(t testing.TB) []Alert {
	t.Helper()
	alerts, err := s.alerts()
	if err != nil {
		t.Fatal(err)
	}
	return alerts
}

func (s *Server) alerts() ([]Alert, error) {
	resp, err := http.Get(s.URL + "api/v2/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("GET /api/v2/alerts: " + resp.Status)
	}
	var alerts []Alert
	return alerts, json.NewDecoder(resp.Body).Decode(&alerts)
}

// WaitAlerts polls GET /api/v2/alerts until match accepts what it returns.
func (s *Server) WaitAlerts(t testing.TB, timeout time.Duration, match func([]Alert) bool) []Alert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		alerts, err := s.alerts()
		if err == nil && match(alerts) {
			return alerts
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(alerts, "", "  ")
			t.Fatalf("Alertmanager's alerts did not match within %v (error %v):\n%s", timeout, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
