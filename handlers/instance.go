package handlers

import (
	"slices"
	"time"
)

// Instance is one Redis server named in config. Only instances built from
// config exist: nothing typed by a user ever becomes an address.
type Instance struct {
	Name     string
	Addr     string // host:port
	Username string
	// Password is the resolved secret (from password, password_env or
	// password_file). It is never rendered: see String.
	Password string
	DB       int
	TLS      *TLS
	Tags     []string
	// MemoryLimit is the container, cgroup or host limit in bytes the
	// process lives under; 0 when unknown.
	MemoryLimit int64
	Thresholds  Thresholds
	// Remediation says how approved actions may touch this instance.
	Remediation Remediation
	// Cluster marks the seed of a Redis Cluster in config, and every node
	// topology.Expand found through it: a seed stands for the whole
	// cluster and is replaced by one instance per node.
	Cluster bool
	// Seeds are the addresses of a cluster seed entry's nodes that are
	// asked, in order, for the cluster's members, so that one node down
	// does not hide the cluster; Addr is the first. Empty for one seed
	// address and for every other instance.
	Seeds []string
	// Sentinel, when set, names a master monitored by Sentinel. A config
	// entry with a Sentinel section has no Addr of its own: topology.Expand
	// replaces it with the current master and its replicas, which keep the
	// section so that a sentinel failover knows whom to ask.
	Sentinel *Sentinel
	// Origin is the name of the config entry (cluster seed or Sentinel
	// entry) that topology.Expand expanded into this instance; "" for an
	// instance straight from config. Expand leaves instances with an
	// Origin alone.
	Origin string
}

// Sentinel names a master and the sentinels that monitor it.
type Sentinel struct {
	// Master is the name the sentinels know the master by (mymaster).
	Master string
	// Addrs are the sentinels' host:port addresses, asked in order until
	// one answers.
	Addrs []string
}

// Remediation is an instance's settings for approval-gated actions.
type Remediation struct {
	// Username and Password, when set, are a separate credential with the
	// write permissions remediation needs; diagnosis keeps the read-only one.
	Username, Password string
	// RestartMethod is "command" (run RestartCommand), "shutdown" (SHUTDOWN
	// SAVE, a supervisor brings it back) or "" (restart not offered).
	RestartMethod  string
	RestartCommand []string
	// RestartEnv names the variables of the bot's environment that
	// RestartCommand gets, besides PATH and HOME; it gets nothing else of
	// the bot's environment (the Slack tokens, the password variables).
	RestartEnv []string
	// FailoverMethod is "failover" (FAILOVER on the primary, Redis >= 6.2),
	// "cluster-failover" (CLUSTER FAILOVER on a replica of a cluster node),
	// "sentinel" (SENTINEL FAILOVER) or "" (failover not offered).
	FailoverMethod string
	// PersistConfig runs CONFIG REWRITE after CONFIG SET.
	PersistConfig bool
	// Failback hands the primary role back to this node after a failover
	// and its restart (FAILOVER TO), once it has resynced.
	Failback bool
}

// TLS holds the files and names for a TLS connection.
type TLS struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	ServerName         string
	InsecureSkipVerify bool
}

// String never includes the password, so an Instance can be logged.
func (i Instance) String() string { return i.Name + " (" + i.Addr + ")" }

// HasTag reports whether the instance carries tag.
func (i Instance) HasTag(tag string) bool { return slices.Contains(i.Tags, tag) }

// Thresholds are the numbers the rules compare against. Every field has a
// default (DefaultThresholds) and can be overridden globally and per instance.
// Byte sizes are in bytes, ratios are plain fractions.
type Thresholds struct {
	FragWarning         float64 `mapstructure:"frag_warning"`           // mem_fragmentation_ratio
	FragCritical        float64 `mapstructure:"frag_critical"`          //
	FragRestart         float64 `mapstructure:"frag_restart"`           // above this the text recommends restart/failover
	FragMinUsedMemory   int64   `mapstructure:"frag_min_used_memory"`   // frag-rising ignores instances with less data
	FragNoiseBytes      int64   `mapstructure:"frag_noise_bytes"`       // RSS beyond the data below this is noise, whatever the ratio
	AllocFragWarning    float64 `mapstructure:"alloc_frag_warning"`     // allocator_frag_ratio
	AllocFragCritical   float64 `mapstructure:"alloc_frag_critical"`    //
	AllocFragMinBytes   int64   `mapstructure:"alloc_frag_min_bytes"`   // allocator_frag_bytes
	PostPeakFactor      float64 `mapstructure:"post_peak_factor"`       // used_memory_peak / used_memory
	SwapMinUsedMemory   int64   `mapstructure:"swap_min_used_memory"`   // frag-swap needs at least this much data
	DefragMinHitRatio   float64 `mapstructure:"defrag_min_hit_ratio"`   // hits/(hits+misses) while defrag runs
	MaxmemoryWarning    float64 `mapstructure:"maxmemory_warning"`      // usage share of maxmemory
	MaxmemoryCritical   float64 `mapstructure:"maxmemory_critical"`     //
	VolatileMinTTLShare float64 `mapstructure:"volatile_min_ttl_share"` // expires/keys below this: volatile-* cannot evict
	RSSLimitWarning     float64 `mapstructure:"rss_limit_warning"`      // used_memory_rss / memory_limit
	RSSLimitCritical    float64 `mapstructure:"rss_limit_critical"`     //
	MaxmemoryOfLimit    float64 `mapstructure:"maxmemory_of_limit"`     // maxmemory above this share of memory_limit
	CowMargin           float64 `mapstructure:"cow_margin"`             // extra share of maxmemory a fork may dirty
	ForkSlowUsec        int64   `mapstructure:"fork_slow_usec"`         // latest_fork_usec
	CowUsedShare        float64 `mapstructure:"cow_used_share"`         // used_memory / memory_limit with persistence on
	ClientBufferAvg     int64   `mapstructure:"client_buffer_avg"`      // bytes per normal client
	ClientBufferTotal   int64   `mapstructure:"client_buffer_total"`    // all normal clients
	ReplicaBuffers      int64   `mapstructure:"replica_buffers"`        // mem_clients_slaves
	ManyScripts         int64   `mapstructure:"many_scripts"`           // number_of_cached_scripts
	LazyfreeBacklog     int64   `mapstructure:"lazyfree_backlog"`       // lazyfree_pending_objects in one sample
	// slow-server judges how long the server took to answer the probe:
	// INFO's round trip, or the connect when it took longer.
	SlowReplyInfo    time.Duration `mapstructure:"slow_reply_info"`    // from this: slow-server info
	SlowReplyWarning time.Duration `mapstructure:"slow_reply_warning"` // from this: slow-server warning
	// The history rules judge a window of past samples, not one snapshot.
	FragRisingPerHour  float64       `mapstructure:"frag_rising_per_hour"` // least-squares rise of mem_fragmentation_ratio per hour
	FragRisingMinSpan  time.Duration `mapstructure:"frag_rising_min_span"` // frag-rising needs a window at least this long
	OOMForecastHorizon time.Duration `mapstructure:"oom_forecast_horizon"` // oom-forecast fires when a limit is nearer than this
	// The key-space rules judge a key scan (/redis keys), not a snapshot.
	BigString             int64   `mapstructure:"big_string"`              // a string key this big (MEMORY USAGE) is a big key
	BigCollection         int64   `mapstructure:"big_collection"`          // a hash, list, set, zset or stream this big is a big key
	BigCollectionElements int64   `mapstructure:"big_collection_elements"` // ... or with this many elements
	NoTTLShare            float64 `mapstructure:"no_ttl_share"`            // share of scanned bytes without a TTL that volatile-* cannot evict
	DefragSkipShare       float64 `mapstructure:"defrag_skip_share"`       // share of scanned bytes in collections active defrag skips
	TTLSizeSpread         float64 `mapstructure:"ttl_size_spread"`         // p90/p10 of the sizes of keys with a TTL
	TTLSizeMinKeys        int64   `mapstructure:"ttl_size_min_keys"`       // ttl-size-mix needs at least this many keys with a TTL
}

// DefaultThresholds are the values from the fragmentation and OOM runbooks
// and from MEMORY DOCTOR (src/object.c).
func DefaultThresholds() Thresholds {
	return Thresholds{
		FragWarning:         1.5,
		FragCritical:        2.0,
		FragRestart:         2.5,
		FragMinUsedMemory:   50 << 20,
		FragNoiseBytes:      32 << 20, // a fresh 7.0 process holds ~6 MiB beyond its data; MEMORY DOCTOR ignores < 10 MB
		AllocFragWarning:    1.1,
		AllocFragCritical:   4.0,
		AllocFragMinBytes:   100 << 20,
		PostPeakFactor:      2.0,
		SwapMinUsedMemory:   100 << 20,
		DefragMinHitRatio:   0.5,
		MaxmemoryWarning:    0.75,
		MaxmemoryCritical:   0.85,
		VolatileMinTTLShare: 0.10,
		RSSLimitWarning:     0.75,
		RSSLimitCritical:    0.85,
		MaxmemoryOfLimit:    0.80,
		CowMargin:           0.5,
		ForkSlowUsec:        10000,
		CowUsedShare:        0.5,
		ClientBufferAvg:     200 << 10,
		ClientBufferTotal:   512 << 20,
		ReplicaBuffers:      10 << 20,
		ManyScripts:         1000,
		LazyfreeBacklog:     100000,
		FragRisingPerHour:   0.05,
		FragRisingMinSpan:   30 * time.Minute,
		OOMForecastHorizon:  24 * time.Hour,
		// Big keys as the Redis docs and cloud providers' guides draw the
		// line: strings from 1 MiB, collections from 10 MiB or 10,000
		// elements (a DEL or HGETALL of them blocks for milliseconds).
		BigString:             1 << 20,
		BigCollection:         10 << 20,
		BigCollectionElements: 10000,
		NoTTLShare:            0.5,
		DefragSkipShare:       0.25,
		// Sixteen times apart is four power-of-two size classes: values
		// that expire leave holes the next, differently sized value
		// cannot reuse.
		TTLSizeSpread:  16,
		TTLSizeMinKeys: 1000,

		// A Redis answers INFO in well under a millisecond, in a few
		// across a datacenter. 200 ms is already more than many clients'
		// command timeout; 500 ms is a quarter of the probe timeout and
		// longer than a fork stalls an instance of up to about 25 GB
		// (the slow-server runbook says why).
		SlowReplyInfo:    200 * time.Millisecond,
		SlowReplyWarning: 500 * time.Millisecond,
	}
}

// Clearing returns the thresholds an alert must fall below to clear: every
// firing threshold moved by margin (0.05 = 5%) towards "healthy". A value
// hovering around a threshold then keeps its alert instead of flapping.
// Ratios above 1 move on their excess (frag 1.5 clears below 1.475 with 5%).
func (t Thresholds) Clearing(margin float64) Thresholds {
	c := t
	down := func(v float64) float64 { return v * (1 - margin) }
	excess := func(v float64) float64 {
		if v > 1 {
			return 1 + (v-1)*(1-margin)
		}
		return down(v)
	}
	c.FragWarning, c.FragCritical, c.FragRestart = excess(t.FragWarning), excess(t.FragCritical), excess(t.FragRestart)
	c.AllocFragWarning, c.AllocFragCritical = excess(t.AllocFragWarning), excess(t.AllocFragCritical)
	c.AllocFragMinBytes = int64(down(float64(t.AllocFragMinBytes)))
	c.MaxmemoryWarning, c.MaxmemoryCritical = down(t.MaxmemoryWarning), down(t.MaxmemoryCritical)
	c.RSSLimitWarning, c.RSSLimitCritical = down(t.RSSLimitWarning), down(t.RSSLimitCritical)
	c.MaxmemoryOfLimit, c.CowUsedShare = down(t.MaxmemoryOfLimit), down(t.CowUsedShare)
	c.ClientBufferAvg, c.ClientBufferTotal = int64(down(float64(t.ClientBufferAvg))), int64(down(float64(t.ClientBufferTotal)))
	c.ReplicaBuffers = int64(down(float64(t.ReplicaBuffers)))
	c.SlowReplyInfo = time.Duration(down(float64(t.SlowReplyInfo)))
	c.SlowReplyWarning = time.Duration(down(float64(t.SlowReplyWarning)))
	return c
}
