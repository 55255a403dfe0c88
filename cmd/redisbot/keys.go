package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/redisbot/redisbot/cmd/redisbot/config"
	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/keyspace"
)

// keyScanner is the scanner of the keys verb, paced and bounded by the
// keys section, for the terminal and Slack alike.
func keyScanner(cfg *config.Config) *keyspace.Scanner {
	s := keyspace.New(cfg.Probe.Timeout)
	s.Budget = cfg.Keys.Budget
	s.MaxDuration = cfg.Keys.MaxDuration
	return s
}

// progressBar draws a key scan's progress on one terminal line, redrawn in
// place, and erases it before the report is printed.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	drawn bool
}

func (p *progressBar) show(pr handlers.KeyScanProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The bar is what SCAN has walked: with --match it walks every key
	// to find the few that match.
	line := "scanning: " + pr.Text()
	if done, ok := pr.Share(); ok {
		cells := int(done*30 + 0.5)
		line = fmt.Sprintf("[%s%s] %3.0f%%  %s", strings.Repeat("#", cells), strings.Repeat(".", 30-cells), done*100, pr.Text())
	}
	line += "  " + pr.Elapsed.Round(time.Second).String()
	if pr.ETA > 0 {
		line += ", ETA " + pr.ETA.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
	p.drawn = true
}

// clear is safe on a nil bar (no terminal, or another verb).
func (p *progressBar) clear() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}
