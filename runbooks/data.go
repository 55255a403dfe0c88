package runbooks

import (
	"strconv"

	"github.com/redisbot/redisbot/handlers"
)

// DataFor is what a finding's Evidence template sees: the snapshot's INFO
// and CONFIG, the finding's evidence by name (display text), and the
// instance's memory_limit in bytes, so {{ bytes "memory_limit" }} works.
func DataFor(rep *handlers.Report, f handlers.Finding) Data {
	d := Data{Info: map[string]string{}, Config: map[string]string{}, Extra: map[string]string{}}
	if rep == nil {
		return d
	}
	d.Instance, d.Addr = rep.Instance, rep.Addr
	if rep.Snapshot != nil {
		d.Info, d.Config = rep.Snapshot.Info, rep.Snapshot.Config
	}
	for _, e := range f.Evidence {
		d.Extra[e.Name] = e.Text
	}
	// INFO's errorstat_OOM is raw ("count=3") and absent when there were
	// none; the count, 0 included, is what a runbook shows.
	if _, ok := d.Extra["errorstat_OOM"]; !ok && rep.Snapshot != nil {
		if n, ok := handlers.OOMErrors(rep.Snapshot); ok {
			d.Extra["errorstat_OOM"] = strconv.FormatInt(n, 10)
		}
	}
	// After the evidence: a fact named memory_limit carries display text,
	// and the templates format the raw number themselves.
	if rep.MemoryLimit > 0 {
		d.Extra["memory_limit"] = strconv.FormatInt(rep.MemoryLimit, 10)
	}
	return d
}
