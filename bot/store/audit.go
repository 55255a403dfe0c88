package store

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// AuditRecord is one thing that happened: a remediation requested,
// approved, executed; a silence set. Records are never changed.
type AuditRecord struct {
	Schema     int               `json:"schema"`
	ID         string            `json:"id"`
	At         time.Time         `json:"at"`
	Instance   string            `json:"instance"`
	Actor      string            `json:"actor"`
	Kind       string            `json:"kind"`
	ApprovalID string            `json:"approval_id,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
}

// auditTime formats At in audit keys: fixed width, so keys sort by time.
const auditTime = "20060102T150405.000000000Z"

// auditKey orders the trail by time, then id: the id breaks ties between
// records of the same instant in the order one replica wrote them.
func auditKey(at time.Time, id string) string {
	return at.UTC().Format(auditTime) + sep + id
}

// Audit appends a record. It assigns a time-sortable unique ID when r.ID is
// empty and At = Now() when zero. A record whose At is already older than
// AuditRetention is not kept, as if Prune had run. Writing an ID twice at
// the same At returns ErrExists: the trail is append-only.
func (s *Store) Audit(ctx context.Context, r AuditRecord) error {
	now := s.now()
	if r.At.IsZero() {
		r.At = now
	}
	if r.ID == "" {
		r.ID = s.ids.next(r.At)
	}
	key, err := joinKey("audit", r.ID)
	if err != nil {
		return err
	}
	ttl := r.At.Add(s.auditRetention).Sub(now)
	if ttl <= 0 {
		return nil
	}
	r.Schema = SchemaVersion
	val, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store: audit %q: encode: %w", r.ID, err)
	}
	written, err := s.b.putIfAbsent(ctx, kindAudit, auditKey(r.At, key), val, ttl)
	if err != nil {
		return fmt.Errorf("store: audit %q: %w", r.ID, err)
	}
	if !written {
		return fmt.Errorf("store: audit %q: %w", r.ID, ErrExists)
	}
	return nil
}

// AuditLog lists records newest first, for one instance or for all when
// instance is "". limit <= 0 means no limit.
func (s *Store) AuditLog(ctx context.Context, instance string, limit int) ([]AuditRecord, error) {
	var (
		out    []AuditRecord
		decErr error
	)
	// One time-ordered trail filtered by instance: the trail is small
	// (people's actions, not probes), so a second index per instance
	// would cost more than the scan.
	err := s.b.list(ctx, kindAudit, span{reverse: true}, func(key string, val []byte) bool {
		var r AuditRecord
		if decErr = decodeRecord(kindAudit, key, val, &r); decErr != nil {
			return false
		}
		if instance == "" || r.Instance == instance {
			out = append(out, r)
		}
		return limit <= 0 || len(out) < limit
	})
	if err == nil {
		err = decErr
	}
	if err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	return out, nil
}

// pruneAudit drops records older than cutoff. Keys start with the time, so
// they are one key range.
func (s *Store) pruneAudit(ctx context.Context, cutoff time.Time) error {
	var old []string
	err := s.b.list(ctx, kindAudit, span{to: cutoff.UTC().Format(auditTime), keysOnly: true}, func(key string, _ []byte) bool {
		old = append(old, key)
		return true
	})
	if err != nil {
		return fmt.Errorf("store: prune audit: %w", err)
	}
	return s.deleteKeys(ctx, kindAudit, old)
}

// idSource makes audit IDs like ULIDs, in hex: 48 bits of milliseconds then
// 80 random bits, so IDs sort by time and replicas never collide. Within
// one millisecond the random part counts up, so one replica's IDs also
// sort in the order it made them.
type idSource struct {
	mu      sync.Mutex
	lastMS  int64
	entropy [10]byte
}

func (g *idSource) next(at time.Time) string {
	ms := max(at.UnixMilli(), 0)
	g.mu.Lock()
	defer g.mu.Unlock()
	if ms == g.lastMS {
		for i := len(g.entropy) - 1; i >= 0; i-- {
			g.entropy[i]++
			if g.entropy[i] != 0 {
				break
			}
		}
	} else {
		g.lastMS = ms
		_, _ = rand.Read(g.entropy[:]) // crypto/rand.Read never fails
		// Leave room to count up without wrapping within a millisecond.
		g.entropy[0] &= 0x7f
	}
	var id [16]byte
	var msBytes [8]byte
	binary.BigEndian.PutUint64(msBytes[:], uint64(ms))
	copy(id[:6], msBytes[2:])
	copy(id[6:], g.entropy[:])
	return hex.EncodeToString(id[:])
}
