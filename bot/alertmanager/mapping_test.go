package alertmanager

import (
	"slices"
	"testing"

	"github.com/redisbot/redisbot/handlers"
)

func TestMap(t *testing.T) {
	instances := []handlers.Instance{
		{Name: "cache-1", Addr: "10.0.0.5:6379"},
		{Name: "Sessions-1", Addr: "Redis-Sessions.internal:6380"},
		{Name: "payments.master", Addr: "10.0.0.9:6379", Origin: "payments"},
		{Name: "ipv6-1", Addr: "[::1]:6390"},
	}
	m := NewMapper(func() []handlers.Instance { return instances }, []LabelRule{
		{Match: map[string]string{"service": "sessions", "env": "prod"}, Instance: "Sessions-1"},
	})
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string
		tried  []string
	}{
		{"redisbot_instance", map[string]string{"redisbot_instance": "cache-1", "instance": "10.0.0.9:6379"}, "cache-1", nil},
		{"entry name", map[string]string{"redisbot_instance": "payments"}, "payments", nil},
		{"unknown name, then the address", map[string]string{"redisbot_instance": "cache-9", "instance": "10.0.0.5:6379"}, "cache-1", nil},
		{"redis_exporter target", map[string]string{"instance": "redis://10.0.0.5:6379"}, "cache-1", nil},
		{"rediss and credentials", map[string]string{"instance": "rediss://:pw@10.0.0.5:6379/0"}, "cache-1", nil},
		{"host case", map[string]string{"instance": "redis-sessions.INTERNAL:6380"}, "Sessions-1", nil},
		{"ipv6", map[string]string{"instance": "redis://[::1]:6390"}, "ipv6-1", nil},
		{"exporter address, then addr", map[string]string{"instance": "exporter:9121", "addr": "10.0.0.9:6379"}, "payments.master", nil},
		{"rule, label names in any case", map[string]string{"Service": "sessions", "env": "prod", "instance": "exporter:9121"}, "Sessions-1", nil},
		{"rule needs every label", map[string]string{"service": "sessions", "instance": "exporter:9121"}, "",
			[]string{"instance=exporter:9121", "label_rules"}},
		{"nothing matches", map[string]string{"redisbot_instance": "nope", "instance": "redis://:hunter2@10.9.9.9:6379", "addr": "not an address"}, "",
			[]string{"redisbot_instance=nope", "instance=redis://:xxxxx@10.9.9.9:6379", "addr=not an address", "label_rules"}},
		{"other schemes are not addresses", map[string]string{"instance": "http://10.0.0.5:6379"}, "",
			[]string{"instance=http://10.0.0.5:6379", "label_rules"}},
		{"no labels", map[string]string{"alertname": "X"}, "", []string{"label_rules"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, tried := m.Map(tc.labels)
			if got != tc.want || !slices.Equal(tried, tc.tried) {
				t.Errorf("Map = %q, tried %q; want %q, tried %q", got, tried, tc.want, tc.tried)
			}
		})
	}
}
