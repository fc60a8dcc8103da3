package traffic

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Unmatched is the site label of the requests no route took: unknown
// names, refused requests before a route was found. It is no host name.
const Unmatched = "(unmatched)"

// Classes are the status classes, in the order of Site.Requests.
var Classes = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// Hist is a histogram: Counts per bucket (not cumulative), the last one
// above every bound (+Inf).
type Hist struct {
	Sum    float64
	Counts []float64
}

// Count is the number of observations.
func (h Hist) Count() float64 {
	var n float64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// Site is one site's counters since nginx started.
type Site struct {
	// Requests by status class (Classes).
	Requests          [5]float64
	BytesIn, BytesOut float64
	ConnectFailures   float64
	Timeouts          float64
	Request, Upstream Hist
}

// Total is the number of requests.
func (s Site) Total() float64 {
	var n float64
	for _, r := range s.Requests {
		n += r
	}
	return n
}

// Snapshot is what nginx counted since its shared memory was created.
type Snapshot struct {
	// Boot changes when nginx restarts (its counters start from zero), not
	// at a reload.
	Boot string
	// Bounds are the histograms' upper bounds in seconds, +Inf left out.
	Bounds []float64
	// Sites by site name ("" for Unmatched, as nginx counts it).
	Sites map[string]Site
}

// Limits of what Parse accepts from the control socket.
const (
	maxSnapshotBytes = 64 << 20
	maxBounds        = 64
	maxSiteName      = 253
)

// Parse reads a snapshot as portico_traffic.lua writes it (GET /traffic).
// It checks every line: the counters come from nginx, but their names are
// route names, and a broken snapshot must not become a broken export.
func Parse(r io.Reader) (Snapshot, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxSnapshotBytes))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	snap := Snapshot{Sites: map[string]Site{}}
	line := 0
	size := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		switch {
		case line == 1:
			if text != "portico-traffic 1" {
				return Snapshot{}, fmt.Errorf("traffic snapshot: header %q: not a snapshot", cut(text))
			}
			continue
		case strings.HasPrefix(text, "boot\t"):
			snap.Boot = text[5:]
			continue
		case strings.HasPrefix(text, "buckets\t"):
			b, err := parseBounds(text[8:])
			if err != nil {
				return Snapshot{}, err
			}
			snap.Bounds = b
			size = 10 + 2*(len(b)+1) + 2
			continue
		case text == "":
			continue
		}
		if size == 0 {
			return Snapshot{}, fmt.Errorf("traffic snapshot line %d: counters before the bucket bounds", line)
		}
		name, vals, ok := strings.Cut(text, "\t")
		if !ok || len(name) > maxSiteName || strings.ContainsAny(name, " \t\r\n\"\\") {
			return Snapshot{}, fmt.Errorf("traffic snapshot line %d: bad site %q", line, cut(name))
		}
		f := strings.Fields(vals)
		if len(f) != size {
			return Snapshot{}, fmt.Errorf("traffic snapshot line %d (site %q): %d counters, want %d", line, name, len(f), size)
		}
		v := make([]float64, size)
		for i, s := range f {
			x, err := strconv.ParseFloat(s, 64)
			if err != nil || x < 0 || math.IsInf(x, 0) || math.IsNaN(x) {
				return Snapshot{}, fmt.Errorf("traffic snapshot line %d (site %q): counter %d %q: not a count", line, name, i+1, cut(s))
			}
			v[i] = x
		}
		snap.Sites[name] = siteOf(v, len(snap.Bounds)+1)
	}
	if err := sc.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("traffic snapshot: %w", err)
	}
	if line == 0 {
		return Snapshot{}, errors.New("traffic snapshot: empty")
	}
	if snap.Boot == "" || snap.Bounds == nil {
		return Snapshot{}, errors.New("traffic snapshot: no boot id or no bucket bounds")
	}
	return snap, nil
}

// siteOf unpacks the Lua module's counter layout (portico_traffic.lua).
func siteOf(v []float64, nb int) Site {
	var s Site
	copy(s.Requests[:], v[0:5])
	s.BytesIn, s.BytesOut, s.ConnectFailures, s.Timeouts = v[5], v[6], v[7], v[8]
	s.Request = Hist{Sum: v[9], Counts: slices.Clone(v[10 : 10+nb])}
	u := 10 + nb
	// v[u+1] counts the requests that reached an upstream: the buckets'
	// sum, so it is not kept apart.
	s.Upstream = Hist{Sum: v[u], Counts: slices.Clone(v[u+2 : u+2+nb])}
	return s
}

func parseBounds(s string) ([]float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > maxBounds {
		return nil, fmt.Errorf("traffic snapshot: %d bucket bounds", len(f))
	}
	b := make([]float64, len(f))
	for i, x := range f {
		v, err := strconv.ParseFloat(x, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) || (i > 0 && v <= b[i-1]) {
			return nil, fmt.Errorf("traffic snapshot: bucket bound %q: want increasing positive numbers", cut(x))
		}
		b[i] = v
	}
	return b, nil
}

func cut(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// add returns a+b, counter by counter (histograms of the same bounds).
func (a Site) add(b Site) Site {
	for i := range a.Requests {
		a.Requests[i] += b.Requests[i]
	}
	a.BytesIn += b.BytesIn
	a.BytesOut += b.BytesOut
	a.ConnectFailures += b.ConnectFailures
	a.Timeouts += b.Timeouts
	a.Request = a.Request.add(b.Request)
	a.Upstream = a.Upstream.add(b.Upstream)
	return a
}

func (h Hist) add(b Hist) Hist {
	out := Hist{Sum: h.Sum + b.Sum, Counts: make([]float64, max(len(h.Counts), len(b.Counts)))}
	for i := range out.Counts {
		if i < len(h.Counts) {
			out.Counts[i] += h.Counts[i]
		}
		if i < len(b.Counts) {
			out.Counts[i] += b.Counts[i]
		}
	}
	return out
}
