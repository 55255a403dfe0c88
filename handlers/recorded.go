package handlers

import "context"

// Recorded reports on every instance carrying one of tags (nil: all) from
// its last recorded snapshot, without probing: views that must open at
// once (Slack's App Home) show what the last sweep saw. Instances with no
// snapshot recorded are left out; so is everything without a History.
// The snapshot is both the current and the previous one, so rules that
// compare the two find no change rather than an invented one.
func (s *Service) Recorded(ctx context.Context, tags []string) []*Report {
	if s.history == nil {
		return nil
	}
	view := s
	if len(tags) > 0 {
		view = s.scoped(tags)
	}
	var out []*Report
	for _, inst := range view.all() {
		snap, ok := s.history.Last(ctx, inst.Name)
		if !ok {
			continue
		}
		r := &Report{Verb: "fleet", Instance: inst.Name, Addr: inst.Addr, Tags: inst.Tags, MemoryLimit: inst.MemoryLimit, Findings: []Finding{}}
		err := Safely(func() error {
			s.analyse(ctx, r, inst, snap, nil, func(in Input, r *Report) { r.Findings = Evaluate(in) })
			return nil
		})
		if pe, ok := AsPanic(err); ok {
			s.panicked(ctx, "analyse", inst.Name, pe)
			r = failed(r, inst, &ReportError{Class: ClassInternal, Message: "internal error while analysing: " + pe.Summary()})
		}
		out = append(out, r)
	}
	return out
}
