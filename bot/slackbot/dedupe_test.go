package slackbot

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redisbot/redisbot/bot/metrics"
	"github.com/redisbot/redisbot/bot/store"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// scrapeMetrics is what /metrics serves.
func scrapeMetrics(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler(metrics.Checks{}, nil, nil))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// While the shared store does not answer, envelopes are deduplicated on
// this replica only, and that is logged and counted.
func TestDedupeFallbackIsCounted(t *testing.T) {
	srv := redistest.StartT(t)
	st, err := store.Open(context.Background(), store.Options{RedisURL: "redis://" + srv.Addr + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := metrics.New()
	b := New(Options{Dedupe: st, Metrics: m})
	if b.duplicate("e1") || !b.duplicate("e1") {
		t.Fatal("shared dedupe")
	}
	srv.Stop()
	if b.duplicate("e2") || !b.duplicate("e2") {
		t.Error("local dedupe while the store is down")
	}
	if body := scrapeMetrics(t, m); !strings.Contains(body, "redisbot_envelope_dedupe_local_total 2") {
		t.Errorf("/metrics lacks the fallback count:\n%s", body)
	}
}
