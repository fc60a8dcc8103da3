package nginx

import "time"

// pacer decides when pending changes are applied. It is pure: the stage
// feeds it times.
//
//   - After a quiet period, a change applies Debounce after the last change
//     of its burst, and at most 10 Debounce after the first.
//   - While applies keep following each other, each one must wait a gap after
//     the previous that doubles from Debounce*2.5 up to MaxGap. So a burst of
//     hundreds of container starts costs a handful of reloads instead of one
//     each, while a lone change still goes live within Debounce.
//   - Two MaxGap of calm reset the gap.
type pacer struct {
	debounce, maxGap time.Duration
	gap              time.Duration
	lastApply        time.Time
}

// due is when to apply, given the first and last change still pending.
func (p *pacer) due(first, last time.Time) time.Time {
	t := last.Add(p.debounce)
	if cap := first.Add(10 * p.debounce); t.After(cap) {
		t = cap
	}
	if !p.lastApply.IsZero() {
		if e := p.lastApply.Add(p.gap); t.Before(e) {
			t = e
		}
	}
	return t
}

// applied records an apply at now and sets the gap for the next one.
func (p *pacer) applied(now time.Time) {
	switch {
	case p.lastApply.IsZero() || now.Sub(p.lastApply) >= 2*p.maxGap:
		p.gap = 0
	case p.gap == 0:
		p.gap = min(p.debounce*5/2, p.maxGap)
	default:
		p.gap = min(p.gap*2, p.maxGap)
	}
	p.lastApply = now
}
