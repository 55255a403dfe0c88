package alertmanager

import (
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/redisbot/redisbot/handlers"
)

// InstanceLabel names a configured instance in an alert's labels; it is
// tried before anything else.
const InstanceLabel = "redisbot_instance"

// addressLabels hold an instance's address, as host:port or in
// redis_exporter's redis://host:port form, in the order tried.
var addressLabels = []string{"instance", "addr"}

// LabelRule maps alerts whose labels have all of Match's values to a
// configured instance: for alerts whose labels name no instance or
// address, such as {service: payments-cache}.
type LabelRule struct {
	Match    map[string]string
	Instance string
}

// Mapper finds the configured instance an alert is about, from its labels
// alone: nothing in an alert is ever dialled.
type Mapper struct {
	// instances are the configured instances now (cluster and Sentinel
	// entries expanded), read at each alert: a failover changes who is
	// at which address.
	instances func() []handlers.Instance
	rules     []LabelRule
}

// NewMapper returns a Mapper over the instances instances returns, with
// rules tried last, in order.
func NewMapper(instances func() []handlers.Instance, rules []LabelRule) *Mapper {
	return &Mapper{instances: instances, rules: rules}
}

// Map returns the name of the configured instance labels point at, or ""
// and the labels it tried ("instance=10.0.0.5:9121"), for the reply that
// says why nothing was diagnosed. The order: redisbot_instance (a
// configured name, or the name of a cluster or Sentinel entry), then the
// instance and addr labels against configured addresses, then the rules.
func (m *Mapper) Map(labels map[string]string) (instance string, tried []string) {
	all := m.instances()
	if v, ok := labels[InstanceLabel]; ok {
		for _, in := range all {
			if in.Name == v || in.Origin == v {
				return v, nil
			}
		}
		tried = append(tried, InstanceLabel+"="+shown(v))
	}
	for _, l := range addressLabels {
		v, ok := labels[l]
		if !ok {
			continue
		}
		if want, ok := normalAddr(v); ok {
			for _, in := range all {
				if a, ok := normalAddr(in.Addr); ok && a == want {
					return in.Name, nil
				}
			}
		}
		tried = append(tried, l+"="+shown(v))
	}
	for _, r := range m.rules {
		if matches(r.Match, labels) {
			return r.Instance, nil
		}
	}
	if len(m.rules) > 0 {
		tried = append(tried, "label_rules")
	}
	return "", tried
}

// matches reports whether labels have every value of want. Label names
// compare case-insensitively: the config's keys, these names among them,
// are read case-folded.
func matches(want, labels map[string]string) bool {
	for k, v := range want {
		found := false
		for name, got := range labels {
			if strings.EqualFold(name, k) && got == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return len(want) > 0
}

// normalAddr reduces an address label to host:port with a lower-case host:
// "redis://:pw@Cache-1:6379/0" and "cache-1:6379" are the same instance.
func normalAddr(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || !slices.Contains([]string{"redis", "rediss"}, u.Scheme) {
			return "", false
		}
		s = u.Host
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || port == "" {
		return "", false
	}
	return net.JoinHostPort(strings.ToLower(host), port), true
}

// shown is a label value as the unmapped reply may quote it: a URL's
// password (redis://:pw@host:6379) is hidden.
func shown(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}
