package metrics

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// lockedBuffer collects log lines written from the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The checks are the handler's inputs that can panic on demand: hand-made
// doubles standing in for a bug in the Slack or store adapters.
func TestHandlerPanicAnswers500AndServerStaysUp(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	m := New()
	var slackPanics, storePanics bool
	var mu sync.Mutex
	checks := Checks{
		SlackConnected: func() bool {
			mu.Lock()
			defer mu.Unlock()
			if slackPanics {
				var conns map[string]*bool
				return *conns["socket"] // nil pointer dereference
			}
			return true
		},
		StorePing: func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if storePanics {
				panic("store adapter bug")
			}
			return nil
		},
	}
	srv := httptest.NewServer(m.Handler(checks, log, nil))
	defer srv.Close()

	set := func(slack, store bool) {
		mu.Lock()
		defer mu.Unlock()
		slackPanics, storePanics = slack, store
	}

	set(true, false)
	if code, body := get(t, srv, "/readyz"); code != http.StatusInternalServerError || body != "internal error\n" {
		t.Errorf("/readyz with a panicking check = %d %q, want 500", code, body)
	}
	if code, _ := get(t, srv, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after a panic = %d", code)
	}
	// The store ping panics in its own goroutine: readiness fails, the
	// panic is logged and counted like any other.
	set(false, true)
	if code, body := get(t, srv, "/readyz"); code != http.StatusServiceUnavailable || body != "store: internal error (logged)\n" {
		t.Errorf("/readyz with a panicking store ping = %d %q, want 503", code, body)
	}
	set(false, false)
	if code, _ := get(t, srv, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz once the checks pass = %d", code)
	}

	const want = `
# HELP redisbot_panics_total Panics recovered (each failed one probe, command or job and is logged with its stack), by where.
# TYPE redisbot_panics_total counter
redisbot_panics_total{where="http"} 2
`
	if err := testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(want), "redisbot_panics_total"); err != nil {
		t.Error(err)
	}
	out := logs.String()
	for _, text := range []string{`"msg":"recovered a panic"`, `"where":"http"`, "nil pointer dereference", `store adapter bug`, "TestHandlerPanicAnswers500AndServerStaysUp"} {
		if !strings.Contains(out, text) {
			t.Errorf("logs lack %q:\n%s", text, out)
		}
	}
}

// A handler that aborts on purpose keeps net/http's abort: no 500, no count.
func TestHandlerAbortIsNotAPanic(t *testing.T) {
	m := New()
	h := recoverRequests(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }), m, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	if resp, err := srv.Client().Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Errorf("aborted request answered %d", resp.StatusCode)
	}
	if n := testutil.ToFloat64(m.panics.WithLabelValues("http")); n != 0 {
		t.Errorf("an abort counted as %v panics", n)
	}
}
