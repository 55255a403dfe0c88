package probe_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// TestTLSToAPlainPortReport: a TLS client pointed at a plain redis-server
// gets a report that says TLS, with its own hint and first action, not
// "check that the server is up": the server is fine.
func TestTLSToAPlainPortReport(t *testing.T) {
	srv := redistest.StartT(t)
	inst := tlsInstance(srv.Addr, &handlers.TLS{InsecureSkipVerify: true})
	p := probe.New(time.Second, nil)
	defer p.Close()
	svc := handlers.NewService([]handlers.Instance{inst}, p, nil, 1, nil)
	r, err := svc.Diagnose(context.Background(), inst.Name)
	if err != nil {
		t.Fatal(err)
	}
	f := findingOf(r, "unreachable")
	if r.Error == nil || r.Error.Class != handlers.ClassTLS || f == nil {
		t.Fatalf("report: error %+v, findings %v; want unreachable of class tls", r.Error, findingIDs(r))
	}
	for _, want := range []string{"Probe failed (tls): the TLS handshake failed", "does not speak TLS", plainPortHint} {
		if !strings.Contains(f.Summary+" "+r.Error.Message, want) {
			t.Errorf("summary %q, error %q: lacks %q", f.Summary, r.Error.Message, want)
		}
	}
	if strings.Contains(f.Summary, "check that the server is up") {
		t.Errorf("summary %q has the generic hint", f.Summary)
	}
	if a := handlers.ChooseFirstAction(r); a.ID != "check-tls" {
		t.Errorf("first action %+v, want check-tls", a)
	}
}
