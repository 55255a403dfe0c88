package topology

import (
	"context"
	"errors"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/redisbot/redisbot/handlers"
	"github.com/redisbot/redisbot/handlers/probe"
	"github.com/redisbot/redisbot/handlers/redistest"
	"github.com/redisbot/redisbot/handlers/topology/topotest"
)

const timeout = 2 * time.Second

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// roles maps each expanded instance's address to its role tag.
func roles(t *testing.T, insts []handlers.Instance) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, in := range insts {
		switch {
		case in.HasTag(TagPrimary) && !in.HasTag(TagReplica):
			out[in.Addr] = TagPrimary
		case in.HasTag(TagReplica) && !in.HasTag(TagPrimary):
			out[in.Addr] = TagReplica
		default:
			t.Errorf("%s has tags %v: want exactly one of primary and replica", in.Name, in.Tags)
		}
	}
	return out
}

func TestExpandCluster(t *testing.T) {
	t.Parallel()
	cl := topotest.StartClusterT(t, 3, 1)
	ctx := context.Background()
	seed := handlers.Instance{
		Name: "orders", Addr: cl.Primaries[0].Addr, Cluster: true,
		Tags: []string{"team-b"}, MemoryLimit: 1 << 30, Thresholds: handlers.DefaultThresholds(),
		Remediation: handlers.Remediation{RestartMethod: "shutdown", FailoverMethod: "cluster-failover"},
	}
	plain := handlers.Instance{Name: "cache-1", Addr: "127.0.0.1:1"}
	want := map[string]string{}
	for _, s := range cl.Primaries {
		want[s.Addr] = TagPrimary
	}
	want[cl.Replicas[0].Addr] = TagReplica

	t.Run("CLUSTER SHARDS", func(t *testing.T) {
		got, errs := Expand(ctx, []handlers.Instance{plain, seed}, timeout)
		if len(errs) != 0 {
			t.Fatalf("errors: %v", errs)
		}
		if len(got) != 5 || !reflect.DeepEqual(got[0], plain) {
			t.Fatalf("got %d instances, want the plain one first and 4 nodes: %v", len(got), got)
		}
		nodes := got[1:]
		if r := roles(t, nodes); !reflect.DeepEqual(r, want) {
			t.Errorf("roles = %v, want %v", r, want)
		}
		for _, in := range nodes {
			if wantName := "orders.127.0.0.1-" + strconv.Itoa(port(t, in.Addr)); in.Name != wantName {
				t.Errorf("name %q, want %q", in.Name, wantName)
			}
			if !in.Cluster || in.Origin != "orders" || in.MemoryLimit != seed.MemoryLimit || !reflect.DeepEqual(in.Remediation, seed.Remediation) ||
				!in.HasTag("team-b") || !in.HasTag("cluster-orders") || in.Thresholds != seed.Thresholds {
				t.Errorf("%s does not inherit the seed's settings: %+v", in.Name, in)
			}
		}
		if !slices.IsSortedFunc(nodes, byName) {
			t.Errorf("nodes not sorted by name: %v", nodes)
		}
		// Expanded instances are left alone the second time.
		again, errs := Expand(ctx, got, timeout)
		if len(errs) != 0 || !reflect.DeepEqual(again, got) {
			t.Errorf("Expand of expanded instances changed them: %v, %v", again, errs)
		}
	})

	t.Run("the seed's name stands for every node", func(t *testing.T) {
		p := probe.New(timeout, nil)
		t.Cleanup(func() { p.Close() })
		svc := handlers.NewService(nil, p, nil, 4, nil)
		svc.SetMembership(func(ctx context.Context) ([]handlers.Instance, []error) {
			return Expand(ctx, []handlers.Instance{plain, seed}, timeout)
		}, time.Hour, timeout)
		for _, verb := range []string{"diagnose", "frag", "oom"} {
			resp, err := svc.Handle(ctx, handlers.Command{Verb: verb, Args: []string{"orders"}})
			if err != nil || len(resp.Reports) != 4 {
				t.Fatalf("%s orders = %v, %v", verb, resp, err)
			}
			got := map[string]string{}
			for _, r := range resp.Reports {
				if r.Failed() || r.Snapshot == nil {
					t.Fatalf("%s of %s failed: %+v", verb, r.Instance, r.Error)
				}
				got[r.Addr] = map[string]string{"master": TagPrimary, "slave": TagReplica}[r.Snapshot.Role()]
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s orders: roles by address %v, want %v", verb, got, want)
			}
		}
	})

	t.Run("CLUSTER NODES fallback parser on the real reply", func(t *testing.T) {
		c := cl.Primaries[1].Client()
		defer c.Close()
		text, err := c.ClusterNodes(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		members, err := nodeMembers(text, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, m := range members {
			got[m.addr()] = map[bool]string{true: TagPrimary, false: TagReplica}[m.primary]
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("members = %v, want %v\n%s", got, want, text)
		}
		nodes, err := ParseClusterNodes(text)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			if n.Has("slave") && n.PrimaryID != cl.IDs[cl.Primaries[0].Addr] {
				t.Errorf("replica %s follows %q, want the first primary", n.Addr(), n.PrimaryID)
			}
			if n.Migrating || n.LinkState != "connected" || n.ID != cl.IDs[n.Addr()] {
				t.Errorf("node %+v", n)
			}
		}
	})

	t.Run("CLUSTER SHARDS denied: Expand falls back to CLUSTER NODES", func(t *testing.T) {
		c := cl.Primaries[0].Client()
		defer c.Close()
		if err := c.Do(ctx, "ACL", "SETUSER", "noshards", "on", ">pw", "+@all", "-cluster|shards", "~*").Err(); err != nil {
			t.Fatal(err)
		}
		limited := seed
		limited.Username, limited.Password = "noshards", "pw"
		if err := redis.NewClient(&redis.Options{Addr: seed.Addr, Username: "noshards", Password: "pw", Protocol: 2}).
			ClusterShards(ctx).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
			t.Fatalf("CLUSTER SHARDS as noshards: %v, want NOPERM", err)
		}
		got, errs := Expand(ctx, []handlers.Instance{limited}, timeout)
		if len(errs) != 0 {
			t.Fatalf("errors: %v", errs)
		}
		if r := roles(t, got); !reflect.DeepEqual(r, want) {
			t.Errorf("roles = %v, want %v", r, want)
		}
		for _, in := range got {
			if in.Username != "noshards" || in.Password != "pw" {
				t.Errorf("%s does not inherit the seed's credentials", in.Name)
			}
		}
	})
}

func TestExpandSentinel(t *testing.T) {
	t.Parallel()
	primary := topotest.StartPrimaryT(t)
	replica := topotest.StartReplicaT(t, primary)
	sentinel := topotest.StartSentinelT(t, "mymaster", primary.Addr)
	sentinel.WaitReplicas(t, "mymaster", 1)

	entry := handlers.Instance{
		Name: "sessions", Tags: []string{"sessions"}, Password: "pw-unused-here",
		// A dead sentinel first: the next one answers.
		Sentinel:    &handlers.Sentinel{Master: "mymaster", Addrs: []string{deadAddr(t), sentinel.Addr}},
		Remediation: handlers.Remediation{FailoverMethod: "sentinel", RestartMethod: "command", RestartCommand: []string{"/bin/true"}},
	}
	got, errs := Expand(context.Background(), []handlers.Instance{entry}, timeout)
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	if len(got) != 2 {
		t.Fatalf("got %v, want master and replica", got)
	}
	m, r := got[0], got[1]
	if m.Name != "sessions.master" || m.Addr != primary.Addr || !m.HasTag(TagPrimary) {
		t.Errorf("master = %+v", m)
	}
	if want := "sessions.replica-127.0.0.1-" + strconv.Itoa(port(t, replica.Addr)); r.Name != want || r.Addr != replica.Addr || !r.HasTag(TagReplica) {
		t.Errorf("replica = %+v, want name %s at %s", r, want, replica.Addr)
	}
	for _, in := range got {
		if in.Origin != "sessions" || !in.HasTag("sentinel-sessions") || !in.HasTag("sessions") || in.Password != entry.Password ||
			!reflect.DeepEqual(in.Sentinel, entry.Sentinel) || in.Sentinel == entry.Sentinel || in.Remediation.FailoverMethod != "sentinel" {
			t.Errorf("%s does not inherit the entry's settings: %+v", in.Name, in)
		}
		// One fixed command cannot restart whichever member is relieved.
		if in.Remediation.RestartMethod != "" || in.Remediation.RestartCommand != nil {
			t.Errorf("%s keeps restart_method command: %+v", in.Name, in.Remediation)
		}
	}
}

func TestExpandUnreachable(t *testing.T) {
	t.Parallel()
	seed := handlers.Instance{Name: "orders", Addr: deadAddr(t), Cluster: true}
	entry := handlers.Instance{Name: "sessions", Sentinel: &handlers.Sentinel{Master: "mymaster", Addrs: []string{deadAddr(t), deadAddr(t)}}}
	plain := redistest.StartT(t) // not in cluster mode
	notCluster := handlers.Instance{Name: "standalone", Addr: plain.Addr, Cluster: true}
	in := []handlers.Instance{seed, entry, notCluster}

	got, errs := Expand(context.Background(), in, timeout)
	if !reflect.DeepEqual(got, in) {
		t.Errorf("entries that could not be expanded must stay as they are: %v", got)
	}
	if len(errs) != 3 {
		t.Fatalf("errors = %v, want 3", errs)
	}
	for i, want := range []struct {
		entry, prefix string
		class         handlers.ErrorClass
	}{
		{"orders", "expand orders: CLUSTER SHARDS: dial tcp " + seed.Addr, handlers.ClassRefused},
		{"sessions", "expand sessions: no sentinel answered: sentinel " + entry.Sentinel.Addrs[0] + ": SENTINEL GET-MASTER-ADDR-BY-NAME: dial tcp", handlers.ClassRefused},
		{"standalone", "expand standalone: CLUSTER NODES: ERR This instance has cluster support disabled", handlers.ClassError},
	} {
		var ge *handlers.GroupError
		if !errors.As(errs[i], &ge) || ge.Entry != want.entry || ge.Class != want.class || !strings.HasPrefix(errs[i].Error(), want.prefix) {
			t.Errorf("error %d = %#v (%q), want entry %s, class %s, prefix %q", i, errs[i], errs[i], want.entry, want.class, want.prefix)
		}
	}
	if !strings.Contains(errs[1].Error(), "sentinel "+entry.Sentinel.Addrs[1]+": ") {
		t.Errorf("every sentinel should be tried: %v", errs[1])
	}

	// The service reports each entry with the reason it could not be
	// expanded and the servers asked, not "check that the server is up"
	// with no address.
	p := probe.New(timeout, nil)
	t.Cleanup(func() { p.Close() })
	svc := handlers.NewService(nil, p, nil, 4, nil)
	svc.SetMembership(func(ctx context.Context) ([]handlers.Instance, []error) { return Expand(ctx, in, timeout) }, time.Hour, timeout)
	resp, err := svc.Handle(context.Background(), handlers.Command{Verb: "diagnose", Args: []string{"sessions"}})
	if err != nil || len(resp.Reports) != 1 {
		t.Fatalf("diagnose sessions = %v, %v", resp, err)
	}
	r := resp.Reports[0]
	f := r.Findings[0]
	errText, _ := handlers.Evidence(f.Evidence).Get("error")
	addr, _ := handlers.Evidence(f.Evidence).Get("addr")
	if f.ID != "unreachable" || r.Error.Class != handlers.ClassRefused ||
		!strings.HasPrefix(f.Summary, "Members unknown (refused): the Sentinel master mymaster behind sessions could not be read; check that the sentinels are up") ||
		!strings.HasPrefix(errText.Text, "no sentinel answered: sentinel "+entry.Sentinel.Addrs[0]+": ") || !strings.Contains(errText.Text, "connection refused") ||
		addr.Text != strings.Join(entry.Sentinel.Addrs, ", ") {
		t.Errorf("finding of sessions with every sentinel down: %+v", f)
	}
}

// A cluster entry with several seeds is expanded from the first that
// answers: the first seed down does not hide the cluster. With every seed
// down, the error names each.
func TestExpandClusterSeeds(t *testing.T) {
	t.Parallel()
	cl := topotest.StartClusterT(t, 2, 0)
	dead := deadAddr(t)
	seed := handlers.Instance{Name: "orders", Addr: dead, Seeds: []string{dead, cl.Primaries[1].Addr}, Cluster: true}
	got, errs := Expand(context.Background(), []handlers.Instance{seed}, timeout)
	if len(errs) != 0 || len(got) != 2 {
		t.Fatalf("Expand = %v, %v", got, errs)
	}
	for _, in := range got {
		if in.Seeds != nil || in.Origin != "orders" || !in.HasTag(TagPrimary) {
			t.Errorf("member %+v", in)
		}
	}

	other := deadAddr(t)
	seed.Seeds = []string{dead, other}
	got, errs = Expand(context.Background(), []handlers.Instance{seed}, timeout)
	var ge *handlers.GroupError
	if len(errs) != 1 || !errors.As(errs[0], &ge) || ge.Class != handlers.ClassRefused || len(got) != 1 || got[0].Name != "orders" {
		t.Fatalf("Expand with every seed down = %v, %v", got, errs)
	}
	if msg := errs[0].Error(); !strings.HasPrefix(msg, "expand orders: no seed answered: seed "+dead+": CLUSTER SHARDS: dial tcp") ||
		!strings.Contains(msg, "; seed "+other+": CLUSTER SHARDS: dial tcp") {
		t.Errorf("error = %q", msg)
	}
}

func TestExpandSentinelUnknownMaster(t *testing.T) {
	t.Parallel()
	primary := redistest.StartT(t)
	sentinel := topotest.StartSentinelT(t, "mymaster", primary.Addr)
	entry := handlers.Instance{Name: "sessions", Sentinel: &handlers.Sentinel{Master: "other", Addrs: []string{sentinel.Addr}}}
	got, errs := Expand(context.Background(), []handlers.Instance{entry}, timeout)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), `no master called "other"`) || len(got) != 1 || got[0].Name != "sessions" {
		t.Errorf("Expand = %v, %v", got, errs)
	}
}

func TestExpandNameTaken(t *testing.T) {
	t.Parallel()
	cl := topotest.StartClusterT(t, 1, 0)
	addr := cl.Primaries[0].Addr
	taken := handlers.Instance{Name: NodeName("orders", "127.0.0.1", port(t, addr)), Addr: "127.0.0.1:1"}
	seed := handlers.Instance{Name: "orders", Addr: addr, Cluster: true}
	got, errs := Expand(context.Background(), []handlers.Instance{seed, taken}, timeout)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "is already the name of another instance") {
		t.Errorf("errors = %v", errs)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], taken) {
		t.Errorf("the name from config must win: %v", got)
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{NodeName("orders", "10.0.0.1", 7000), "orders.10.0.0.1-7000"},
		{NodeName("orders", "::1", 7000), "orders.--1-7000"},
		{NodeName("orders", "Redis-0.Redis.NS.svc", 6379), "orders.redis-0.redis.ns.svc-6379"},
		{NodeName("orders", "fe80::1%eth0", 6379), "orders.fe80--1-eth0-6379"},
		{ReplicaName("sessions", "10.0.0.2", 6380), "sessions.replica-10.0.0.2-6380"},
		{MasterName("sessions"), "sessions.master"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if got := GeneratedTags(handlers.Instance{Name: "orders", Cluster: true}); !reflect.DeepEqual(got, []string{"cluster-orders", "primary", "replica"}) {
		t.Errorf("GeneratedTags(cluster) = %v", got)
	}
	if got := GeneratedTags(handlers.Instance{Name: "s", Sentinel: &handlers.Sentinel{}}); !reflect.DeepEqual(got, []string{"sentinel-s", "primary", "replica"}) {
		t.Errorf("GeneratedTags(sentinel) = %v", got)
	}
	if got := GeneratedTags(handlers.Instance{Name: "c"}); got != nil {
		t.Errorf("GeneratedTags(plain) = %v", got)
	}
}

func TestParseClusterNodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
		want []ClusterNode
		err  string
	}{
		{
			name: "redis 7 with hostname, migrating slot",
			text: "e7d1eec 10.0.0.1:7000@17000,node-a.example myself,master - 0 0 1 connected 0-5460 [5461->-67ed2db]\n" +
				"67ed2db 10.0.0.2:7001@17001 slave e7d1eec 0 1426238317239 2 connected\n",
			want: []ClusterNode{
				{ID: "e7d1eec", Host: "10.0.0.1", Port: 7000, Hostname: "node-a.example", Flags: []string{"myself", "master"}, LinkState: "connected", Migrating: true},
				{ID: "67ed2db", Host: "10.0.0.2", Port: 7001, Flags: []string{"slave"}, PrimaryID: "e7d1eec", LinkState: "connected"},
			},
		},
		{
			name: "importing slot, redis 3 address without bus port, failed node",
			text: "292f8b3 127.0.0.1:30001 myself,master - 0 0 1 connected 0-100 [93-<-e7d1eec]\r\n" +
				"e7d1eec 127.0.0.1:30002 master,fail - 1426238316232 1426238316232 2 disconnected\r\n",
			want: []ClusterNode{
				{ID: "292f8b3", Host: "127.0.0.1", Port: 30001, Flags: []string{"myself", "master"}, LinkState: "connected", Migrating: true},
				{ID: "e7d1eec", Host: "127.0.0.1", Port: 30002, Flags: []string{"master", "fail"}, LinkState: "disconnected"},
			},
		},
		{
			name: "IPv6, and a lone node that does not know its address",
			text: "aaa ::1:7000@17000 master - 0 0 0 connected\nbbb :7001@17001 myself,master - 0 0 0 connected\nccc :0@0 master,noaddr - 0 0 0 disconnected\n",
			want: []ClusterNode{
				{ID: "aaa", Host: "::1", Port: 7000, Flags: []string{"master"}, LinkState: "connected"},
				{ID: "bbb", Port: 7001, Flags: []string{"myself", "master"}, LinkState: "connected"},
				{ID: "ccc", Flags: []string{"master", "noaddr"}, LinkState: "disconnected"},
			},
		},
		{name: "short line", text: "aaa 127.0.0.1:7000@17000 master -\n", err: "CLUSTER NODES line 1: 4 fields, want at least 8"},
		{name: "no port", text: "aaa 127.0.0.1 master - 0 0 0 connected\n", err: `CLUSTER NODES line 1: address "127.0.0.1" has no port`},
		{name: "bad port", text: "aaa 127.0.0.1:x@1 master - 0 0 0 connected\n", err: `CLUSTER NODES line 1: invalid port in "127.0.0.1:x@1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseClusterNodes(tc.text)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("ParseClusterNodes = %+v, %v\nwant %+v", got, err, tc.want)
			}
		})
	}
	members, err := nodeMembers("aaa ::1:7000@17000 master - 0 0 0 connected\nbbb :7001@17001 myself,slave aaa 0 0 0 connected\nccc :0@0 master,noaddr - 0 0 0 disconnected\nddd 10.0.0.9:7002@17002 handshake - 0 0 0 disconnected\n", "10.0.0.5")
	want := []member{{host: "::1", port: 7000, primary: true}, {host: "10.0.0.5", port: 7001}}
	if err != nil || !reflect.DeepEqual(members, want) {
		t.Errorf("nodeMembers = %+v, %v; want %+v", members, err, want)
	}
	if got := members[0].addr(); got != "[::1]:7000" {
		t.Errorf("addr = %q", got)
	}
}

// A member's name moves to another server when its group fails over
// (<entry>.master): the prober, which pools connections by name, must
// probe the server at the new address, not the one its pooled client
// reaches.
func TestProbeFollowsAMovedMember(t *testing.T) {
	t.Parallel()
	a, b := redistest.StartT(t), redistest.StartT(t)
	p := probe.New(timeout, nil)
	defer p.Close()
	for _, addr := range []string{a.Addr, b.Addr, a.Addr} {
		snap, err := p.Probe(context.Background(), handlers.Instance{Name: MasterName("sessions"), Addr: addr})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := snap.Info.String("tcp_port"); got != strconv.Itoa(port(t, addr)) {
			t.Errorf("probe of sessions.master at %s answered from port %s", addr, got)
		}
	}
}
