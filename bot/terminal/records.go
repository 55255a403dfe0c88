package terminal

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// Records renders the answer of a store-backed verb (approvals, audit,
// silences) and reports whether resp was one.
func (r *Renderer) Records(resp *handlers.Response, now time.Time) bool {
	switch {
	case resp.Approvals != nil:
		r.approvals(resp.Approvals, now)
	case resp.Audit != nil:
		r.audit(resp.AuditOf, resp.Audit)
	case resp.Silences != nil:
		r.silences(resp.Silences, now)
	default:
		return false
	}
	return true
}

func (r *Renderer) approvals(list []handlers.PendingApproval, now time.Time) {
	if len(list) == 0 {
		r.printf("No pending approval requests.\n")
		return
	}
	tw := tabwriter.NewWriter(r.w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", "ID", "ACTION", "INSTANCE", "REQUESTED BY", "EXPIRES IN")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", Clean(a.ID), Clean(string(a.Action)), Clean(a.Instance), Clean(a.RequestedBy),
			a.ExpiresAt.Sub(now).Round(time.Minute))
	}
	tw.Flush()
}

func (r *Renderer) audit(of string, list []handlers.AuditEntry) {
	if len(list) == 0 {
		r.printf("No audit records for %s.\n", Clean(of))
		return
	}
	r.printf("%s\n", r.paint(bold, "Audit log: "+Clean(of)))
	tw := tabwriter.NewWriter(r.w, 0, 4, 2, ' ', 0)
	for _, x := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\tby %s\t%s\t%s\n", x.At.UTC().Format("2006-01-02 15:04"), Clean(x.Instance), Clean(x.Kind),
			Clean(x.Actor), Clean(x.ApprovalID), Clean(oneLine(x.Summary)))
	}
	tw.Flush()
}

func (r *Renderer) silences(list []handlers.SilenceEntry, now time.Time) {
	if len(list) == 0 {
		r.printf("No active silences.\n")
		return
	}
	tw := tabwriter.NewWriter(r.w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", "ID", "INSTANCE", "FINDING", "BY", "UNTIL")
	for _, x := range list {
		what := x.Finding
		if what == "" {
			what = "every finding"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s more)\n", Clean(x.ID), Clean(x.Instance), Clean(what), Clean(x.CreatedBy),
			x.Until.UTC().Format("2006-01-02 15:04 UTC"), x.Until.Sub(now).Round(time.Minute))
	}
	tw.Flush()
}

// Trend summarises an instance's history beside its chart, under the
// chart's title: the span, and the lowest, last and highest of each series.
func (r *Renderer) Trend(t *handlers.Trend, title, chart string) {
	if len(t.Points) == 0 {
		r.printf("No history for %s in the last %s: sweeps record it (schedule.sweep).\n", Clean(t.Instance.Name), window(t.Window))
		return
	}
	first, last := t.Points[0], t.Points[len(t.Points)-1]
	r.printf("%s\n", r.paint(bold, Clean(title)))
	r.printf("%d samples from %s to %s\n", len(t.Points), first.At.UTC().Format("2006-01-02 15:04"), last.At.UTC().Format("2006-01-02 15:04 UTC"))
	tw := tabwriter.NewWriter(r.w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\tlowest\tlast\thighest\n")
	bytes := func(label string, of func(handlers.Point) int64) {
		lo, hi := of(first), of(first)
		for _, p := range t.Points {
			lo, hi = min(lo, of(p)), max(hi, of(p))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", label, handlers.HumanBytes(lo), handlers.HumanBytes(of(last)), handlers.HumanBytes(hi))
	}
	bytes("used memory", func(p handlers.Point) int64 { return p.UsedMemory })
	bytes("RSS", func(p handlers.Point) int64 { return p.RSS })
	lo, hi := first.FragRatio, first.FragRatio
	for _, p := range t.Points {
		lo, hi = min(lo, p.FragRatio), max(hi, p.FragRatio)
	}
	fmt.Fprintf(tw, "fragmentation ratio\t%.2f\t%.2f\t%.2f\n", lo, last.FragRatio, hi)
	tw.Flush()
	if chart != "" {
		r.printf("Chart: %s\n", Clean(chart))
	}
}

// window prints 24h0m0s as 24h.
func window(d time.Duration) string { return strings.TrimSuffix(d.String(), "0m0s") }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
