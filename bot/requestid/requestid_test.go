package requestid

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestHandlerAddsTheRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Handler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	id := New()
	if len(id) != 12 || id == New() {
		t.Fatalf("New() = %q", id)
	}
	ctx := With(context.Background(), id)
	log.InfoContext(ctx, "with id")
	log.WithGroup("g").WarnContext(ctx, "in a group", "k", "v")
	log.Info("without context")
	log.InfoContext(context.Background(), "context without id")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	var recs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, m)
	}
	if recs[0]["request"] != id || recs[0]["component"] != "test" {
		t.Errorf("first record %v", recs[0])
	}
	if g, _ := recs[1]["g"].(map[string]any); g["request"] != id {
		t.Errorf("grouped record %v", recs[1])
	}
	for _, r := range recs[2:] {
		if _, ok := r["request"]; ok {
			t.Errorf("record without an id got one: %v", r)
		}
	}
	if From(context.Background()) != "" {
		t.Error("From on a bare context")
	}
}
