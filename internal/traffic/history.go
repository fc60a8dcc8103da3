package traffic

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// MaxCharts bounds the sites Charts returns: the busiest; the page says
// how many quieter ones it leaves out.
const MaxCharts = 50

// Num is a chart value; NaN (no data) is written as JSON null.
type Num float64

// MarshalJSON writes n, or null for NaN and infinities.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', 6, 64), nil
}

// Charts is the history the page draws: one point per sampling interval,
// oldest first, for the busiest sites over the window.
type Charts struct {
	IntervalSeconds float64     `json:"interval_seconds"`
	Times           []int64     `json:"times"` // unix seconds
	Sites           []SiteChart `json:"sites"`
	// Quieter is the number of sites left out (MaxCharts); Idle the
	// number of counted sites with no request in the window, left out too.
	Quieter int `json:"quieter,omitempty"`
	Idle    int `json:"idle,omitempty"`
	// Error is why nginx's counters could not be read, if so.
	Error string `json:"error,omitempty"`
}

// SiteChart is one site's series. ErrorRate is the share of 5xx answers;
// P50 and P99 are request-time quantiles in seconds, interpolated within
// the histogram's buckets as Prometheus' histogram_quantile does.
type SiteChart struct {
	Site string `json:"site"`
	// Requests, ServerErrors and UpstreamFailures (connect failures and
	// timeouts) are counted over the window.
	Requests         float64 `json:"requests"`
	ServerErrors     float64 `json:"server_errors"`
	UpstreamFailures float64 `json:"upstream_failures"`
	RPS              []Num   `json:"rps"`
	ErrorRate        []Num   `json:"error_rate"`
	P50              []Num   `json:"p50"`
	P99              []Num   `json:"p99"`
}

// history is a ring of points per site; its size is fixed, and a site
// leaves it with its route.
type history struct {
	n      int
	times  []time.Time // ring
	head   int         // next slot
	filled int
	prev   map[string]Site
	prevAt time.Time
	sites  map[string]*series
}

// series holds one site's values per slot.
type series struct {
	rps, errRate, p50, p99 []float64
	reqs, errs, fails      []float64
}

func newHistory(n int) *history {
	n = max(n, 2)
	return &history{n: n, times: make([]time.Time, n), sites: map[string]*series{}}
}

func nanSlice(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = math.NaN()
	}
	return s
}

func (h *history) add(now time.Time, totals map[string]Site, bounds []float64) {
	slot := h.head
	h.times[slot] = now
	h.head = (h.head + 1) % h.n
	h.filled = min(h.filled+1, h.n)
	dt := now.Sub(h.prevAt).Seconds()
	for k := range h.sites {
		if _, ok := totals[k]; !ok {
			delete(h.sites, k) // its route is gone
		}
	}
	for k, cur := range totals {
		s := h.sites[k]
		if s == nil {
			s = &series{rps: nanSlice(h.n), errRate: nanSlice(h.n), p50: nanSlice(h.n), p99: nanSlice(h.n),
				reqs: make([]float64, h.n), errs: make([]float64, h.n), fails: make([]float64, h.n)}
			h.sites[k] = s
		}
		s.rps[slot], s.errRate[slot], s.p50[slot], s.p99[slot] = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		s.reqs[slot], s.errs[slot], s.fails[slot] = 0, 0, 0
		old, ok := h.prev[k]
		if !ok || h.prevAt.IsZero() || dt <= 0 {
			continue
		}
		d, ok := delta(cur, old)
		if !ok {
			continue // counters went down (nginx evicted them): no point
		}
		n := d.Total()
		s.reqs[slot], s.errs[slot], s.fails[slot] = n, d.Requests[4], d.ConnectFailures+d.Timeouts
		s.rps[slot] = n / dt
		if n > 0 {
			s.errRate[slot] = d.Requests[4] / n
			s.p50[slot] = quantile(0.5, d.Request, bounds)
			s.p99[slot] = quantile(0.99, d.Request, bounds)
		}
	}
	h.prev, h.prevAt = totals, now
}

// delta is cur-old; false when a counter went down.
func delta(cur, old Site) (Site, bool) {
	neg := func(h Hist) Hist {
		out := Hist{Sum: -h.Sum, Counts: make([]float64, len(h.Counts))}
		for i, c := range h.Counts {
			out.Counts[i] = -c
		}
		return out
	}
	o := old
	for i := range o.Requests {
		o.Requests[i] = -o.Requests[i]
	}
	o.BytesIn, o.BytesOut, o.ConnectFailures, o.Timeouts = -o.BytesIn, -o.BytesOut, -o.ConnectFailures, -o.Timeouts
	o.Request, o.Upstream = neg(o.Request), neg(o.Upstream)
	d := cur.add(o)
	for _, r := range d.Requests {
		if r < 0 {
			return Site{}, false
		}
	}
	for _, c := range d.Request.Counts {
		if c < 0 {
			return Site{}, false
		}
	}
	return d, d.ConnectFailures >= 0 && d.Timeouts >= 0
}

// quantile estimates the q-quantile of h, interpolating linearly within
// a bucket; one in the +Inf bucket is the highest bound.
func quantile(q float64, h Hist, bounds []float64) float64 {
	total := h.Count()
	if total == 0 || len(bounds) == 0 {
		return math.NaN()
	}
	rank := q * total
	var cum float64
	for i, c := range h.Counts {
		if i >= len(bounds) {
			return bounds[len(bounds)-1]
		}
		if c > 0 && cum+c >= rank {
			lower := 0.0
			if i > 0 {
				lower = bounds[i-1]
			}
			return lower + (bounds[i]-lower)*(rank-cum)/c
		}
		cum += c
	}
	return bounds[len(bounds)-1]
}

// charts returns the window, oldest first, for the limit busiest sites.
func (h *history) charts(interval time.Duration, limit int) Charts {
	c := Charts{IntervalSeconds: interval.Seconds(), Times: []int64{}, Sites: []SiteChart{}}
	start := (h.head - h.filled + h.n) % h.n
	order := make([]int, h.filled)
	for i := range order {
		order[i] = (start + i) % h.n
		c.Times = append(c.Times, h.times[order[i]].Unix())
	}
	pick := func(v []float64) []Num {
		out := make([]Num, len(order))
		for i, o := range order {
			out[i] = Num(v[o])
		}
		return out
	}
	for k, s := range h.sites {
		sc := SiteChart{Site: k}
		if k == "" {
			sc.Site = Unmatched
		}
		for _, o := range order {
			sc.Requests += s.reqs[o]
			sc.ServerErrors += s.errs[o]
			sc.UpstreamFailures += s.fails[o]
		}
		if sc.Requests == 0 {
			c.Idle++
			continue
		}
		c.Sites = append(c.Sites, sc)
	}
	slices.SortFunc(c.Sites, func(a, b SiteChart) int {
		if a.Requests != b.Requests {
			if a.Requests > b.Requests {
				return -1
			}
			return 1
		}
		if a.Site < b.Site {
			return -1
		}
		if a.Site > b.Site {
			return 1
		}
		return 0
	})
	if len(c.Sites) > limit {
		c.Quieter = len(c.Sites) - limit
		c.Sites = c.Sites[:limit]
	}
	for i := range c.Sites {
		k := c.Sites[i].Site
		if k == Unmatched {
			k = ""
		}
		s := h.sites[k]
		c.Sites[i].RPS, c.Sites[i].ErrorRate, c.Sites[i].P50, c.Sites[i].P99 = pick(s.rps), pick(s.errRate), pick(s.p50), pick(s.p99)
	}
	return c
}
