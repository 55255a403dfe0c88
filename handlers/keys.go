package handlers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redisbot/redisbot/handlers/redact"
)

// Bounds on what a keys command may ask for.
const (
	maxMatchLength = 256
	maxKeyLimit    = 100_000_000
)

// ParseKeysArgs reads "keys <instance> [--match GLOB] [--top N] [--limit N]
// [--fast]". Flags go anywhere after the verb, as "--flag value" or
// "--flag=value"; --limit takes 500000, 500k or 1m. The match pattern is
// only ever a SCAN argument: it is bounded, never interpreted here.
func ParseKeysArgs(args []string) (name string, opts KeyScanOptions, err error) {
	usage := func(format string, a ...any) error {
		v, _ := LookupVerb("keys")
		return &UsageError{Verb: "keys", Msg: fmt.Sprintf(format, a...) + " (usage: " + v.Usage + ")"}
	}
	opts = KeyScanOptions{Top: DefaultKeyTop, Limit: DefaultKeyLimit}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "--") {
			if name != "" {
				return "", opts, usage("keys takes one instance name")
			}
			name = arg
			continue
		}
		flag, value, hasValue := strings.Cut(arg, "=")
		if flag == "--fast" {
			if hasValue {
				return "", opts, usage("--fast takes no value")
			}
			opts.Fast = true
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return "", opts, usage("%s needs a value", redact.Truncate(flag, 32))
			}
			i++
			value = args[i]
		}
		switch flag {
		case "--match":
			if value == "" || len(value) > maxMatchLength {
				return "", opts, usage("--match needs a pattern of 1 to %d characters", maxMatchLength)
			}
			opts.Match = value
		case "--top":
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 || n > KeepKeys {
				return "", opts, usage("--top must be a number from 1 to %d, not %q", KeepKeys, redact.Truncate(value, 32))
			}
			opts.Top = n
		case "--limit":
			n, err := parseCount(value)
			if err != nil || n < 1 || n > maxKeyLimit {
				return "", opts, usage("--limit must be a number of keys from 1 to 100m (500000, 500k, 1m), not %q", redact.Truncate(value, 32))
			}
			opts.Limit = n
		default:
			return "", opts, usage("unknown option %q", redact.Truncate(flag, 32))
		}
	}
	if name == "" {
		return "", opts, usage("keys takes one instance name")
	}
	return name, opts, nil
}

// parseCount reads 500000, 500k or 2m.
func parseCount(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"), strings.HasSuffix(s, "K"):
		mult, s = 1000, s[:len(s)-1]
	case strings.HasSuffix(s, "m"), strings.HasSuffix(s, "M"):
		mult, s = 1_000_000, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxKeyLimit {
		return 0, errors.New("not a count")
	}
	return n * mult, nil
}

// SetKeyScanner enables the keys verb.
func (s *Service) SetKeyScanner(k KeyScanner) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scanner = k
}

func (s *Service) keyScanner() KeyScanner {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.scanner
}

// KeyTargets returns the servers a key scan of name covers: the instance
// itself; for the name of a cluster seed in config, every primary of that
// cluster; for the name of a Sentinel entry, its current master, as the
// last membership read found it (a replica holds the same keys, but a
// scan reads the primary, which serves them).
func (s *Service) KeyTargets(name string) ([]Instance, error) {
	var primaries []Instance
	for _, inst := range s.all() {
		if inst.Sentinel != nil && inst.Origin == name && inst.HasTag("primary") {
			return []Instance{inst}, nil
		}
		if inst.Name == name {
			if inst.Cluster && inst.HasTag("replica") {
				// A cluster replica answers MOVED for every key it holds
				// (no READONLY): its scan would measure nothing.
				return nil, &UsageError{Verb: "keys", Msg: fmt.Sprintf("%s is a cluster replica: scan its primary, or the whole cluster by its seed's name (%s)", name, inst.Origin)}
			}
			return []Instance{inst}, nil
		}
		if inst.Cluster && inst.Origin == name && inst.HasTag("primary") {
			primaries = append(primaries, inst)
		}
	}
	if len(primaries) > 0 {
		return primaries, nil
	}
	_, err := s.Lookup(name)
	return nil, err
}

// Keys scans the key space of an instance (every primary of a cluster) and
// judges it. The instance is probed first: an unreachable one is reported
// as such without a scan, and the snapshot gives the rules the eviction
// policy and fragmentation. Cancelling ctx ends the scan early with a
// partial result, which the report marks as a sample.
func (s *Service) Keys(ctx context.Context, name string, opts KeyScanOptions) (*Report, error) {
	scanner := s.keyScanner()
	if scanner == nil {
		return nil, &UsageError{Verb: "keys", Msg: "key scans are not enabled on this redisbot"}
	}
	nodes, err := s.KeyTargets(name)
	if err != nil {
		return nil, err
	}
	first := nodes[0]
	if opts.Thresholds == (Thresholds{}) {
		opts.Thresholds = first.Thresholds
	}
	r := s.probeAndAnalyse(ctx, "keys", first, func(Input, *Report) {})
	r.Instance = name
	if r.Failed() {
		return r, nil
	}
	scan, err := scanner.Scan(ctx, nodes, opts)
	if pe, ok := AsPanic(err); ok {
		// The report says "internal"; the stack goes to the log.
		s.panicked(ctx, "keyscan", name, pe)
	}
	if err != nil {
		e := &ReportError{Class: ClassOf(err), Message: redact.Secrets(err.Error(), first.Password)}
		if e.Class == "" {
			e.Class = ClassError
		}
		r.Error = e
		f := unreachableFinding(first, e)
		// The probe worked: say what failed is the scan, and why.
		switch e.Class {
		case ClassNoPerm:
			f.Summary = "Key scan refused (noperm): the bot's ACL user lacks the key-scan rules (docs/redis-acl.md, \"For /redis keys\")."
		case ClassError:
			f.Summary = "Key scan failed: the server refused a key-scan command (renamed or disabled?): " + redact.Truncate(e.Message, 300)
		default:
			f.Summary = "Key scan failed (" + string(e.Class) + ") after a successful probe: " + redact.Truncate(e.Message, 300)
		}
		r.Findings = []Finding{f}
		r.Severity = Worst(r.Findings)
		return r, nil
	}
	r.Keys = &KeyReport{KeyScan: *scan, Shown: opts.Top}
	r.Findings = KeyFindings(scan, r.Snapshot, opts.Thresholds)
	r.Severity = Worst(r.Findings)
	return r, nil
}

// KeyReport is a key scan in a report, with how many top keys to show.
type KeyReport struct {
	KeyScan
	// Shown is how many of Top the report shows (--top); the CSV has all.
	Shown int `json:"shown"`
}
