package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/redisbot/redisbot/handlers"
)

// writeReports streams a fleet's reports one at a time; what it writes is
// the text json.Encoder wrote for the whole slice, so --json output does
// not change: indentation, HTML escaping, each report's first action.
func TestWriteReportsIsTheEncodersText(t *testing.T) {
	at := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	healthy := &handlers.Report{Verb: "fleet", Instance: "cache-<1>&", Addr: "10.0.0.1:6379", Tags: []string{"cache"}, ProbedAt: at,
		Severity: handlers.SeverityWarning, Findings: []handlers.Finding{{ID: "maxmemory-unset", Severity: handlers.SeverityWarning, Title: "maxmemory is not set"}}}
	dead := &handlers.Report{Verb: "fleet", Instance: "queue-1", Addr: "10.0.0.2:6379", ProbedAt: at, Severity: handlers.SeverityCritical,
		Error:    &handlers.ReportError{Class: handlers.ClassRefused, Message: "connection refused"},
		Findings: []handlers.Finding{{ID: "unreachable", Severity: handlers.SeverityCritical}}}
	for _, reports := range [][]*handlers.Report{{}, {healthy}, {dead, healthy}, {dead, nil, healthy}} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := writeReports(&got, reports); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("%d reports: writeReports wrote\n%s\njson.Encoder writes\n%s", len(reports), got.String(), want.String())
		}
	}
	if err := writeReports(failingWriter{}, []*handlers.Report{healthy}); err == nil {
		t.Error("a failed write is not reported")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
