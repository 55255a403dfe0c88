package resptest

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// probePipeline is what one probe sends after connecting.
func probePipeline() []byte {
	cmds := [][]string{{"INFO", "everything"}}
	for _, key := range []string{"maxmemory", "maxmemory-policy", "activedefrag", "active-defrag-ignore-bytes",
		"active-defrag-threshold-lower", "active-defrag-threshold-upper", "active-defrag-cycle-min",
		"active-defrag-cycle-max", "active-defrag-max-scan-fields", "save", "appendonly", "jemalloc-bg-thread",
		"replica-ignore-maxmemory"} {
		cmds = append(cmds, []string{"config", "get", key})
	}
	cmds = append(cmds, []string{"memory", "stats"}, []string{"memory", "doctor"}, []string{"ping"})
	var b strings.Builder
	for _, c := range cmds {
		b.WriteString("*" + strconv.Itoa(len(c)) + "\r\n")
		for _, a := range c {
			b.WriteString("$" + strconv.Itoa(len(a)) + "\r\n" + a + "\r\n")
		}
	}
	return []byte(b.String())
}

// TestAnsweringAllocatesNothing: a thousand servers answering a sweep must not
// make garbage per command. Parsing reuses the session's buffers and the
// replies are encoded once.
func TestAnsweringAllocatesNothing(t *testing.T) {
	data := probePipeline()
	var in bytes.Reader
	var r atomic.Pointer[replies]
	r.Store(buildReplies(DefaultInfo))
	sess := session{r: bufio.NewReaderSize(nil, 4096), w: bufio.NewWriterSize(io.Discard, 4096), replies: &r}
	commands := 0
	serveAll := func() {
		in.Reset(data)
		sess.r.Reset(&in)
		sess.w.Reset(io.Discard)
		commands = 0
		for {
			args, err := sess.readCommand()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sess.dispatch(args)
			commands++
		}
		_ = sess.w.Flush()
	}
	if allocs := testing.AllocsPerRun(100, serveAll); allocs != 0 {
		t.Errorf("%v allocations per probe pipeline, want 0", allocs)
	}
	if commands != 17 {
		t.Errorf("served %d commands, want 17", commands)
	}
}
