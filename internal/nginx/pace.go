package nginx

import "time"

// streamChanges is how many changes within one window (maxGap) make a
// stream: 5 in the default 2s, i.e. 2.5 per second. Notifications that
// arrive while a sync runs fold into one, so this counts batches, not
// records. A person starting
// containers one after another stays below it (a start is one or two record
// writes, plus a certificate); `docker compose up` of a large project or a
// host reboot goes above.
const streamChanges = 5

// pacer decides when pending changes are applied. It is pure: the stage
// feeds it times.
//
//   - A change applies Debounce after the last change of its batch, and at
//     most 10 Debounce after the first, so a lone change goes live fast.
//   - While changes stream in (streamChanges or more within maxGap), each
//     apply must also wait a gap after the previous one that doubles from
//     2.5 Debounce up to maxGap. So a burst of hundreds of container starts
//     costs a handful of reloads instead of one each.
//   - When the stream thins out the gap stays, so Docker finishing its
//     starts in clumps does not start the spacing over at every pause. It
//     is dropped once no change came for maxGap.
type pacer struct {
	debounce, maxGap      time.Duration
	gap                   time.Duration
	lastApply, lastChange time.Time
	recent                []time.Time // changes within the last maxGap
}

// changed records a change at now.
func (p *pacer) changed(now time.Time) {
	if !p.lastChange.IsZero() && now.Sub(p.lastChange) > p.maxGap {
		p.gap = 0 // calm for a whole window: whatever comes now is new
	}
	p.lastChange = now
	p.prune(now)
	p.recent = append(p.recent, now)
}

func (p *pacer) prune(now time.Time) {
	i := 0
	for i < len(p.recent) && now.Sub(p.recent[i]) > p.maxGap {
		i++
	}
	p.recent = p.recent[i:]
}

func (p *pacer) streaming() bool { return len(p.recent) >= streamChanges }

// due is when to apply, given the first and last change still pending.
func (p *pacer) due(first, last time.Time) time.Time {
	t := last.Add(p.debounce)
	if cap := first.Add(10 * p.debounce); t.After(cap) {
		t = cap
	}
	if p.gap > 0 && !p.lastApply.IsZero() {
		if e := p.lastApply.Add(p.gap); t.Before(e) {
			t = e
		}
	}
	return t
}

// applied records an apply at now and sets the gap for the next one.
func (p *pacer) applied(now time.Time) {
	p.prune(now)
	switch {
	case !p.streaming():
		// Thinning out: the gap stays, so a pause inside a burst does not
		// start the spacing over; changed drops it after a calm maxGap.
	case p.gap == 0:
		p.gap = min(p.debounce*5/2, p.maxGap)
	default:
		p.gap = min(p.gap*2, p.maxGap)
	}
	p.lastApply = now
}
