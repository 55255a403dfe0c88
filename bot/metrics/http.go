package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/redisbot/redisbot/handlers"
)

// storePingTimeout bounds the store check so a stuck store fails readiness
// instead of hanging the orchestrator's probe.
const storePingTimeout = time.Second

// shutdownTimeout bounds the graceful shutdown in Serve.
const shutdownTimeout = 5 * time.Second

// Checks are the inputs of /readyz, which means "this replica can serve
// commands": Slack connected and the store answering. It is the same on
// the replica that leads and on one that follows: with two replicas behind
// a readiness probe both must be ready, or a rolling update, whose new pod
// starts as a follower, never proceeds. Whether the fleet is being swept
// is shared state, not this replica's: /metrics reports it from the store
// (redisbot_fleet_last_sweep_age_seconds) on every replica. A nil function
// is a check that does not apply to this process and is skipped.
type Checks struct {
	// SlackConnected reports whether the Socket Mode connection is up.
	SlackConnected func() bool
	// StorePing answers whether the store is usable; it gets 1s.
	StorePing func(ctx context.Context) error
}

// Handler serves /metrics from the own registry, /healthz (200 "ok" while
// the process can answer at all) and /readyz (200 "ok" when every check in
// c passes, else 503 with one line per failing check). On a nil *Metrics
// only /healthz and /readyz are served. now is unused since readiness
// stopped judging sweep ages (see Checks); it stays so callers need not
// change.
//
// A panic in a request (a check, the registry) answers that request 500
// and is logged to log (nil: nowhere) and counted; the server stays up.
func (m *Metrics) Handler(c Checks, log *slog.Logger, _ func() time.Time) http.Handler {
	if ping := c.StorePing; ping != nil {
		// The ping runs in a goroutine of its own (pingStore), out of
		// reach of the request's recovery.
		c.StorePing = func(ctx context.Context) error {
			err := handlers.Safely(func() error { return ping(ctx) })
			if pe, ok := handlers.AsPanic(err); ok {
				m.Panicked(ctx, log, "http", pe)
				return errors.New("internal error (logged)")
			}
			return err
		}
	}
	mux := http.NewServeMux()
	if m != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		failed := readiness(r.Context(), c)
		if len(failed) > 0 {
			writeText(w, http.StatusServiceUnavailable, strings.Join(failed, "\n")+"\n")
			return
		}
		writeText(w, http.StatusOK, "ok\n")
	})
	return recoverRequests(mux, m, log)
}

// recoverRequests answers a request whose handler panics with 500 and logs
// and counts the panic. net/http would recover it too, but only by dropping
// the connection and printing to its own logger, uncounted.
func recoverRequests(h http.Handler, m *Metrics, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackingWriter{ResponseWriter: w}
		pe, ok := handlers.AsPanic(handlers.Safely(func() error { h.ServeHTTP(tw, r); return nil }))
		if !ok {
			return
		}
		if pe.Value == http.ErrAbortHandler {
			panic(http.ErrAbortHandler) // the handler's own way to abort
		}
		m.Panicked(r.Context(), log, "http", pe)
		if tw.wrote {
			// Part of a 200 is out: abort the connection rather than end
			// a truncated body as if it were whole.
			panic(http.ErrAbortHandler)
		}
		writeText(w, http.StatusInternalServerError, "internal error\n")
	})
}

// trackingWriter remembers whether a response has started.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// readiness returns one line per failing check, none when the bot is ready.
func readiness(ctx context.Context, c Checks) []string {
	var failed []string
	if c.SlackConnected != nil && !c.SlackConnected() {
		failed = append(failed, "slack: not connected")
	}
	if c.StorePing != nil {
		if err := pingStore(ctx, c.StorePing); err != nil {
			// The store's errors already start with "store: ".
			failed = append(failed, "store: "+strings.TrimPrefix(err.Error(), "store: "))
		}
	}
	return failed
}

// pingStore runs ping with a 1s deadline and gives up at the deadline even
// if ping ignores its context, so /readyz always answers in time.
func pingStore(ctx context.Context, ping func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, storePingTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- handlers.Safely(func() error { return ping(ctx) }) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %v: %w", storePingTimeout, ctx.Err())
	}
}

// Serve serves h on addr until ctx ends, then shuts down gracefully, giving
// in-flight requests up to 5s. It returns nil after a clean shutdown.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	ln, err := Listen(ctx, addr)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, h)
}

// Listen binds addr, so a process can fail its start-up on a port it cannot
// have before it starts anything else.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	// Binding is quick; an already ended ctx still gets a clean bind and
	// shutdown rather than a listen error that reads like a port problem.
	var lc net.ListenConfig
	ln, err := lc.Listen(context.WithoutCancel(ctx), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	return ln, nil
}

// ServeListener is Serve on a listener from Listen, which it closes.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
	}
	errc := make(chan error, 1)
	go func() { errc <- handlers.Safely(func() error { return srv.Serve(ln) }) }()

	select {
	case err := <-errc:
		return fmt.Errorf("metrics: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("metrics: shutdown %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve %s: %w", ln.Addr(), err)
	}
	return nil
}
