package config

import (
	"reflect"
	"testing"

	"github.com/redisbot/redisbot/handlers"
)

func TestLoadGroups(t *testing.T) {
	cfg, err := Load(t.Context(), "testdata/good_group.yml", env(map[string]string{"REDISBOT_INSTANCES_ORDERS_PASSWORD": "env-orders-pw"}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(cfg.Instances) != 4 {
		t.Fatalf("instances = %v", cfg.Instances)
	}
	orders := cfg.Instances[0]
	want := handlers.Instance{
		Name: "orders", Addr: "redis-0.orders.internal:6379", Password: "env-orders-pw", TLS: &handlers.TLS{},
		Tags: []string{"orders"}, MemoryLimit: 4 << 30, Thresholds: handlers.DefaultThresholds(), Cluster: true,
		Remediation: handlers.Remediation{RestartMethod: "shutdown", FailoverMethod: "cluster-failover"},
	}
	if !reflect.DeepEqual(orders, want) {
		t.Errorf("cluster seed:\n got %+v\nwant %+v", orders, want)
	}
	sessions := cfg.Instances[1]
	want = handlers.Instance{
		Name: "sessions", Thresholds: handlers.DefaultThresholds(),
		Sentinel:    &handlers.Sentinel{Master: "mymaster", Addrs: []string{"10.0.0.1:26379", "sentinel-2.internal:26379", "[::1]:26379"}},
		Remediation: handlers.Remediation{FailoverMethod: "sentinel"},
	}
	if !reflect.DeepEqual(sessions, want) {
		t.Errorf("sentinel entry:\n got %+v\nwant %+v", sessions, want)
	}
	if c := cfg.Instances[2]; c.Cluster || c.Sentinel != nil || c.Remediation.FailoverMethod != "failover" {
		t.Errorf("plain instance = %+v", c)
	}
	carts := cfg.Instances[3]
	want = handlers.Instance{
		Name: "carts", Addr: "10.0.1.1:7000", Seeds: []string{"10.0.1.1:7000", "10.0.1.2:7000", "[::1]:7000"},
		Thresholds: handlers.DefaultThresholds(), Cluster: true,
		Remediation: handlers.Remediation{RestartMethod: "shutdown", FailoverMethod: "cluster-failover", Failback: true},
	}
	if !reflect.DeepEqual(carts, want) {
		t.Errorf("cluster entry with seeds:\n got %+v\nwant %+v", carts, want)
	}
	// Tags only the expanded instances carry route alerts and limit
	// channels.
	if got := cfg.Alerts.ChannelFor([]string{"sentinel-sessions"}); got != "C0SESS" {
		t.Errorf("ChannelFor(sentinel-sessions) = %q", got)
	}
	if got := cfg.Access.Channels[0].Tags; !reflect.DeepEqual(got, []string{"cluster-orders", "primary"}) {
		t.Errorf("channel tags = %v", got)
	}
}

// checkGroupInvariants holds for every instance Load accepts: one server
// has an address; a cluster seed too (the first of its seeds, when it has
// several, each valid and listed once), and database 0; a Sentinel entry
// has none, but a master name and valid sentinel addresses.
func checkGroupInvariants(t *testing.T, in handlers.Instance) {
	t.Helper()
	if in.Sentinel == nil {
		if msg := checkAddr(in.Addr); msg != "" {
			t.Errorf("Load accepted addr %q: %s", in.Addr, msg)
		}
		if in.Cluster && in.DB != 0 {
			t.Errorf("%s: Load accepted db %d on a cluster seed", in.Name, in.DB)
		}
		seen := map[string]bool{}
		for _, a := range in.Seeds {
			if msg := checkAddr(a); msg != "" || seen[a] || !in.Cluster {
				t.Errorf("%s: Load accepted seed %q (%s, a duplicate, or not a cluster)", in.Name, a, msg)
			}
			seen[a] = true
		}
		if len(in.Seeds) > 0 && in.Addr != in.Seeds[0] {
			t.Errorf("%s: addr %q is not the first seed of %v", in.Name, in.Addr, in.Seeds)
		}
		return
	}
	s := in.Sentinel
	if in.Cluster || in.Addr != "" || s.Master == "" || len(s.Addrs) == 0 {
		t.Errorf("%s: Load accepted sentinel entry %+v (cluster %v, addr %q)", in.Name, s, in.Cluster, in.Addr)
	}
	seen := map[string]bool{}
	for _, a := range s.Addrs {
		if msg := checkAddr(a); msg != "" || seen[a] {
			t.Errorf("%s: Load accepted sentinel address %q (%s, or a duplicate)", in.Name, a, msg)
		}
		seen[a] = true
	}
}
