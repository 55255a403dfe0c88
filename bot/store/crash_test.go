package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/redistest"
)

// crashEnv tells the test binary, re-executed as a child, to run
// crashChild against "bbolt=<path>" or "redis=<url>".
const crashEnv = "REDISBOT_STORE_CRASH_CHILD"

// crashPrefix keeps the child's Redis keys apart from anything else.
const crashPrefix = "crash:"

// TestMain runs the crash child when the test binary is re-executed by a
// crash test, and the tests otherwise: the child is not a test of its own,
// so a normal run has nothing to skip.
func TestMain(m *testing.M) {
	if target := os.Getenv(crashEnv); target != "" {
		if err := crashChild(target); err != nil {
			fmt.Fprintln(os.Stderr, "crash child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild writes in a tight loop until it is killed. Each iteration
// creates approval i, approves it (a read-modify-write), audits it and
// appends sample i (another read-modify-write, of a history block), in that
// order, each durable before the next starts.
func crashChild(target string) error {
	ctx := context.Background()
	kind, where, _ := strings.Cut(target, "=")
	o := Options{Path: where}
	if kind == "redis" {
		o = Options{RedisURL: where, KeyPrefix: crashPrefix}
	}
	s, err := Open(ctx, o)
	if err != nil {
		return err
	}
	base := time.Now().Add(-time.Hour).Truncate(time.Hour)
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		id := crashID(i)
		if err := s.CreateApproval(ctx, newApproval(id, base.Add(time.Duration(i)*time.Second))); err != nil {
			return err
		}
		_, err := s.UpdateApproval(ctx, id, func(a *Approval) error {
			a.State = "approved"
			a.Approvals = append(a.Approvals, Decision{User: "U2", At: time.Now()})
			return nil
		})
		if err != nil {
			return err
		}
		if err := s.Audit(ctx, AuditRecord{Instance: "cache-1", Actor: "U2", Kind: "approved", ApprovalID: id}); err != nil {
			return err
		}
		x := handlers.Point{At: base.Add(time.Duration(i) * time.Minute), UsedMemory: int64(i) << 10, Keys: int64(i)}
		if err := s.AppendSample(ctx, "cache-1", x); err != nil {
			return err
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
	return errors.New("not killed within 30s")
}

func crashID(i int) string { return fmt.Sprintf("crash-%07d", i) }

func TestCrashBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	crash(t, "bbolt="+path)
	s, err := Open(context.Background(), Options{Path: path})
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer s.Close()
	// bbolt's own consistency check: every page reachable once, no page
	// both free and in use.
	err = s.raw.(*boltBackend).db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCrashState(t, s)
}

func TestCrashRedis(t *testing.T) {
	srv := redistest.StartT(t)
	url := "redis://" + srv.Addr + "/0"
	crash(t, "redis="+url)
	s, err := Open(context.Background(), Options{RedisURL: url, KeyPrefix: crashPrefix})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkCrashState(t, s)
}

// crash runs crashChild in a child process and SIGKILLs it about
// 300 ms after its first iteration, mid-write.
func crash(t *testing.T, target string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), crashEnv+"="+target)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// ready reports nil once the child has written, or what it said
	// before exiting without writing.
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var out strings.Builder
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout) // so the child never blocks on a full pipe
				return
			}
			out.WriteString(sc.Text() + "\n")
		}
		ready <- fmt.Errorf("child exited before writing: %s", out.String())
	}()
	select {
	case err := <-ready:
		if err != nil {
			_ = cmd.Wait()
			t.Fatalf("%v%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("child not ready after 30s: %s", stderr.String())
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr.String())
	}
}

// checkCrashState checks what the killed child left: every record
// decodes, and the counts show its writes landed whole and in order.
// With A approvals, B audit records and C samples, iteration i wrote
// approval i, then its approval, then audit i, then sample i, so
// A >= B >= C >= A-1, the ids of each are exactly 0..n-1, and only the
// last approval may still be pending (killed between create and update).
func checkCrashState(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	approvals, err := s.Approvals(ctx)
	if err != nil {
		t.Fatalf("approvals after the crash: %v", err)
	}
	audit, err := s.AuditLog(ctx, "", 0)
	if err != nil {
		t.Fatalf("audit after the crash: %v", err)
	}
	samples, err := s.Samples(ctx, "cache-1", time.Time{}, time.Now().Add(365*24*time.Hour))
	if err != nil {
		t.Fatalf("samples after the crash: %v", err)
	}
	a, b, c := len(approvals), len(audit), len(samples)
	t.Logf("the child was killed after %d approvals, %d audit records, %d samples", a, b, c)
	if a < 10 {
		t.Errorf("only %d iterations in 300 ms: the crash did not land in a busy loop", a)
	}
	if !(a >= b && b >= c && c >= a-1) {
		t.Errorf("counts out of order: %d approvals, %d audit records, %d samples", a, b, c)
	}
	// Approvals are listed newest first; ids count down from a-1.
	for j, ap := range approvals {
		i := a - 1 - j
		if ap.ID != crashID(i) {
			t.Fatalf("approval %d is %q, want %q", j, ap.ID, crashID(i))
		}
		pending := ap.State == "pending" && ap.Revision == 1 && len(ap.Approvals) == 0
		approved := ap.State == "approved" && ap.Revision == 2 && len(ap.Approvals) == 1
		if !approved && !(pending && i == a-1) {
			t.Errorf("approval %s: state %q revision %d approvals %d", ap.ID, ap.State, ap.Revision, len(ap.Approvals))
		}
		if pending && b != a-1 {
			t.Errorf("approval %s is pending but has an audit record", ap.ID)
		}
	}
	for j, r := range audit {
		if want := crashID(b - 1 - j); r.ApprovalID != want || r.Kind != "approved" {
			t.Fatalf("audit record %d is for %q (%s), want %q", j, r.ApprovalID, r.Kind, want)
		}
	}
	for i, x := range samples {
		if x.UsedMemory != int64(i)<<10 || x.Keys != int64(i) || !x.At.Equal(samples[0].At.Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("sample %d is %+v", i, x)
		}
	}

	// The store keeps working where the child stopped.
	if err := s.CreateApproval(ctx, newApproval(crashID(a), time.Now())); err != nil {
		t.Errorf("create after the crash: %v", err)
	}
	if err := s.AppendSample(ctx, "cache-1", handlers.Point{At: samples[c-1].At.Add(time.Minute), UsedMemory: int64(c) << 10, Keys: int64(c)}); err != nil {
		t.Errorf("append after the crash: %v", err)
	}
	if got, _ := s.Samples(ctx, "cache-1", samples[0].At, time.Now().Add(365*24*time.Hour)); len(got) != c+1 {
		t.Errorf("after one more append: %d samples, want %d", len(got), c+1)
	}
}
