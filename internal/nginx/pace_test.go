package nginx

import (
	"testing"
	"time"
)

func TestPacerLoneChangeAppliesAfterDebounce(t *testing.T) {
	p := pacer{debounce: 100 * time.Millisecond, maxGap: 2 * time.Second}
	t0 := time.Unix(1000, 0)
	if got := p.due(t0, t0); got != t0.Add(100*time.Millisecond) {
		t.Fatalf("due = %v, want debounce after the change", got.Sub(t0))
	}
	p.changed(t0)
	p.applied(t0.Add(100 * time.Millisecond))
	// Long after: calm again, the next lone change is not held back.
	t1 := t0.Add(time.Minute)
	p.changed(t1)
	if got := p.due(t1, t1); got != t1.Add(100*time.Millisecond) {
		t.Fatalf("after calm: due = %v", got.Sub(t1))
	}
}

func TestPacerContinuousStreamAppliesAtMostEvery10Debounce(t *testing.T) {
	p := pacer{debounce: 100 * time.Millisecond, maxGap: 2 * time.Second}
	t0 := time.Unix(1000, 0)
	if got := p.due(t0, t0.Add(5*time.Second)); got != t0.Add(time.Second) {
		t.Fatalf("due = %v, want capped at 10 debounce", got.Sub(t0))
	}
}

// simulate feeds changes at the given offsets and counts applies.
func simulate(p *pacer, changes []time.Duration) (applies int, lastApply time.Duration) {
	t0 := time.Unix(1000, 0)
	var first, last time.Time
	pending := false
	i := 0
	now := t0
	for i < len(changes) || pending {
		var next time.Time
		if pending {
			next = p.due(first, last)
		}
		if i < len(changes) && (!pending || t0.Add(changes[i]).Before(next)) {
			now = t0.Add(changes[i])
			p.changed(now)
			if !pending {
				first, pending = now, true
			}
			last = now
			i++
			continue
		}
		now = next
		p.applied(now)
		pending = false
		applies++
	}
	return applies, now.Sub(t0)
}

func TestPacerBurstCostsFewApplies(t *testing.T) {
	tests := []struct {
		name       string
		changes    []time.Duration
		maxApplies int
	}{
		{"500 starts in 10s", spread(500, 10*time.Second), 10},
		{"50 starts 300ms apart, a record and a certificate each", twice(spread(50, 15*time.Second), 50*time.Millisecond), 14},
		{"one change", []time.Duration{0}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pacer{debounce: 100 * time.Millisecond, maxGap: 2 * time.Second}
			n, end := simulate(&p, tt.changes)
			t.Logf("%d applies, last %v after the last change", n, end-tt.changes[len(tt.changes)-1])
			if n > tt.maxApplies {
				t.Errorf("%d applies, want <= %d", n, tt.maxApplies)
			}
			if lastChange := tt.changes[len(tt.changes)-1]; end-lastChange > 2*time.Second+100*time.Millisecond {
				t.Errorf("last change applied %v after it happened", end-lastChange)
			}
		})
	}
}

// What Docker did with 500 starts, 16 at a time (benchmark P2): clumps of
// starts about 6/s with pauses of up to 1.8s, for 90s. The gap used to drop
// at every pause, and each clump started the spacing over: every change of
// this stream was its own apply. A pause shorter than maxGap now keeps the
// gap; a calm maxGap drops it.
func TestPacerClumpyBurstKeepsItsGap(t *testing.T) {
	for _, tt := range []struct {
		pause      time.Duration
		maxApplies int
	}{
		{time.Second, 45},
		{1300 * time.Millisecond, 50},
		{1800 * time.Millisecond, 60},
	} {
		p := pacer{debounce: 25 * time.Millisecond, maxGap: 2 * time.Second}
		cs := clumps(30, 8, 1300*time.Millisecond, tt.pause)
		n, end := simulate(&p, cs)
		lastChange := cs[len(cs)-1]
		t.Logf("pauses of %v: %d changes, %d applies, last %v after the last change", tt.pause, len(cs), n, end-lastChange)
		if n > tt.maxApplies {
			t.Errorf("pauses of %v: %d applies for %d changes, want <= %d", tt.pause, n, len(cs), tt.maxApplies)
		}
		if end-lastChange > 2*time.Second+25*time.Millisecond {
			t.Errorf("pauses of %v: last change applied %v after it happened", tt.pause, end-lastChange)
		}
	}
	// Clumps with calm of more than maxGap between them are separate
	// episodes: nothing is held back across the calm.
	p := pacer{debounce: 25 * time.Millisecond, maxGap: 2 * time.Second}
	simulate(&p, clumps(3, 8, 1300*time.Millisecond, 0))
	calm := time.Unix(1000, 0).Add(time.Minute)
	p.changed(calm)
	if got := p.due(calm, calm); got != calm.Add(25*time.Millisecond) {
		t.Errorf("first change after a calm minute: due %v after it, want the debounce", got.Sub(calm))
	}
}

// clumps is n clumps of k changes spread over d, each followed by a pause.
func clumps(n, k int, d, pause time.Duration) []time.Duration {
	var out []time.Duration
	for c := range n {
		start := time.Duration(c) * (d + pause)
		for _, off := range spread(k, d) {
			out = append(out, start+off)
		}
	}
	return out
}

func spread(n int, over time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = over * time.Duration(i) / time.Duration(n)
	}
	return out
}

// Containers started one after another (benchmark P1) are lone changes:
// each applies Debounce after it happens, never held by a gap.
func TestPacerSeparateChangesAreNotPaced(t *testing.T) {
	p := pacer{debounce: 100 * time.Millisecond, maxGap: 2 * time.Second}
	t0 := time.Unix(1000, 0)
	for i := range 20 {
		// Two record writes per start (network connect, then start), one
		// start every 1.2s: a trickle, not a stream.
		c := t0.Add(time.Duration(i) * 1200 * time.Millisecond)
		p.changed(c)
		p.changed(c.Add(10 * time.Millisecond))
		due := p.due(c, c.Add(10*time.Millisecond))
		if want := c.Add(110 * time.Millisecond); due != want {
			t.Fatalf("change %d applied %v after it happened, want 110ms", i, due.Sub(c))
		}
		p.applied(due)
	}
}

// twice follows each change with a second one after d (a record, then its
// certificate).
func twice(cs []time.Duration, d time.Duration) []time.Duration {
	out := make([]time.Duration, 0, 2*len(cs))
	for _, c := range cs {
		out = append(out, c, c+d)
	}
	return out
}
