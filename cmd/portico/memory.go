package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// Memory of `portico run` (docs/store.md, "Memory of portico run"). The Go
// runtime's defaults suit a process that may use what it likes; `portico
// run` sits beside nginx on small machines and is mostly idle, so it
// collects earlier (GOGC 50 instead of 100), returns what a burst of
// changes left behind once the process is quiet again (memTrimmer), and
// lets go of the executable pages its start-up touched (dropExePages).

const (
	// defaultGCPercent is `portico run`'s GOGC when the environment sets
	// none: the heap may grow to 1.5 times what is live instead of 2.
	defaultGCPercent = 50
	// trimEvery is how often the trimmer looks.
	trimEvery = 10 * time.Second
	// trimQuietAlloc: less than this allocated since the last look means
	// the process is quiet (no resync, no burst of records under way).
	trimQuietAlloc = 4 << 20
	// trimMinExcess is how much the heap must hold beyond what is live
	// (garbage not yet collected, free spans not yet returned) before a
	// quiet process returns it.
	trimMinExcess = 8 << 20
)

// memOpts are `portico run`'s memory flags.
type memOpts struct {
	limit *string
}

func addMemory(fs *flag.FlagSet) *memOpts {
	return &memOpts{limit: fs.String("memory-limit", "",
		"soft limit for the Go runtime's memory (heap, stacks; not nginx, not the binary), e.g. 96MiB or 200MB: "+
			"the garbage collector works harder as it is approached; never a hard cap. Empty: GOMEMLIMIT, else none")}
}

// apply sets the garbage collector's target (GOGC, else defaultGCPercent)
// and soft limit (--memory-limit, else GOMEMLIMIT as the runtime read it)
// and returns what it set, for the start-up log.
func (o *memOpts) apply(e env) ([]any, error) {
	gc := "GOGC"
	if e.get("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
		gc = strconv.Itoa(defaultGCPercent)
	}
	attrs := []any{"gogc", gc}
	if *o.limit != "" {
		n, err := parseBytes(*o.limit)
		if err != nil {
			return nil, usageError(fmt.Errorf("--memory-limit %q: %w", *o.limit, err))
		}
		debug.SetMemoryLimit(n)
	}
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		attrs = append(attrs, "memory_limit", l)
	}
	return attrs, nil
}

// parseBytes reads a byte count: digits with an optional unit B, KB, MB,
// GB (powers of 1000) or KiB, MiB, GiB (powers of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a number of bytes with an optional unit (B, KB, MB, GB, KiB, MiB, GiB): %w", err)
	}
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q: want B, KB, MB, GB, KiB, MiB or GiB", unit)
	}
	if n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%d%s is out of range", n, unit)
	}
	return n * mult, nil
}

// memTrimmer returns memory to the system after a burst. The runtime
// collects only when the heap reaches its goal (or every 2 minutes), and
// its background scavenger returns free memory slowly; after a resync of
// thousands of records the process would keep the burst's peak for
// minutes. Every trimEvery, when the process has been quiet since the
// last look and the heap holds more than trimMinExcess (and a quarter)
// beyond what was live at the last collection, it collects and returns
// the free memory at once (debug.FreeOSMemory: one full collection, a few
// milliseconds at 10,000 routes).
type memTrimmer struct {
	log     *slog.Logger
	samples []metrics.Sample
	// lastAlloc is the cumulative allocation count at the last look.
	lastAlloc uint64
	// floor is what the heap held right after the last trim: what a
	// collection cannot give back (fragmentation) never triggers another.
	floor uint64
	// exeDropped is when the executable's pages were last let go
	// (dropExePages): at the first quiet look, then at a quiet look at
	// most every exeDropEvery, so that code a burst ran (a resync, a
	// certificate order) does not stay resident once it is over.
	exeDropped time.Time
}

// exeDropEvery spaces dropExePages: the pages in use come back at their
// next access, a few hundred minor faults.
const exeDropEvery = time.Minute

func newMemTrimmer(log *slog.Logger) *memTrimmer {
	return &memTrimmer{log: log, samples: []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}}
}

// Run looks every trimEvery until ctx ends.
func (t *memTrimmer) Run(ctx context.Context) error {
	tick := time.NewTicker(trimEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			t.look()
		}
	}
}

// look trims when the process is quiet and holds much more than is live.
func (t *memTrimmer) look() {
	metrics.Read(t.samples)
	v := make([]uint64, len(t.samples))
	for i, s := range t.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return // not supported by this runtime: never trim
		}
		v[i] = s.Value.Uint64()
	}
	alloc, live, held := v[0], v[1], v[2]+v[3]+v[4]
	quiet := alloc-t.lastAlloc < trimQuietAlloc
	t.lastAlloc = alloc
	if now := time.Now(); quiet && now.Sub(t.exeDropped) >= exeDropEvery {
		t.exeDropped = now
		n, err := dropExePages()
		if err != nil {
			t.log.Warn("let go of the executable's start-up pages", "err", err)
		} else {
			t.log.Debug("let go of the executable's start-up pages", "advised_bytes", n)
		}
	}
	if !trimDue(quiet, live, held, t.floor) {
		return
	}
	t0 := time.Now()
	debug.FreeOSMemory()
	metrics.Read(t.samples)
	t.lastAlloc = t.samples[0].Value.Uint64()
	t.floor = t.samples[2].Value.Uint64() + t.samples[3].Value.Uint64() + t.samples[4].Value.Uint64()
	t.log.Debug("returned memory after a burst", "held_bytes", held, "now_bytes", t.floor,
		"live_bytes", t.samples[1].Value.Uint64(), "took", time.Since(t0))
}

// trimDue: quiet, and the heap holds more than trimMinExcess beyond both
// a quarter over what was live at the last collection and what it held
// right after the last trim (floor).
func trimDue(quiet bool, live, held, floor uint64) bool {
	return quiet && held > max(live+live/4, floor)+trimMinExcess
}
