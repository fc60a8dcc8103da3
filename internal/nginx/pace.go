package nginx

import "time"

// pacer decides when pending changes are applied. It is pure: the stage
// feeds it times.
//
//   - After a quiet period, a change applies Debounce after the last change
//     of its burst, and at most 10 Debounce after the first.
//   - When a batch of changes starts soon (within calm) after the previous
//     apply, changes are streaming in: each apply must wait a gap after the
//     previous one that doubles from Debounce*2.5 up to MaxGap. So a burst of
//     hundreds of container starts costs a handful of reloads instead of one
//     each.
//   - A batch that starts after a calm period resets the gap, so a lone
//     change still goes live within Debounce.
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

// calm is how long after an apply a new change must wait to count as a
// lone change rather than part of a stream.
func (p *pacer) calm() time.Duration { return max(p.maxGap/2, 2*p.debounce) }

// applied records an apply at now of a batch whose first change came at
// first, and sets the gap for the next apply.
func (p *pacer) applied(now, first time.Time) {
	switch {
	case p.lastApply.IsZero() || first.Sub(p.lastApply) >= p.calm():
		p.gap = 0
	case p.gap == 0:
		p.gap = min(p.debounce*5/2, p.maxGap)
	default:
		p.gap = min(p.gap*2, p.maxGap)
	}
	p.lastApply = now
}
