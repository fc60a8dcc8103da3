package siteopts

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Access are the access and limit options (docs/labels.md, "Access and
// limits"): who may reach a site, how big a body and how slow an upstream
// it accepts, and how fast one client address may ask. The zero value sets
// none of them.
type Access struct {
	// Allow are the client prefixes allowed (portico.allow); empty allows
	// every client. Masked, sorted and unique.
	Allow []netip.Prefix
	// AuthFile is the htpasswd file's bare name inside --auth-dir
	// (portico.auth-file); "" is none.
	AuthFile string
	// MaxBody is the request body limit (portico.max-body).
	MaxBody Size
	// Timeout is the upstream read and send timeout (portico.timeout),
	// ConnectTimeout the connect timeout (portico.connect-timeout); 0 is
	// the default.
	Timeout, ConnectTimeout time.Duration
	// Rate is the request rate per client address (portico.rate); the zero
	// Rate is no limit. Burst is how many requests above it are served at
	// once (portico.rate-burst); -1 is the default, DefaultBurst.
	Rate  Rate
	Burst int
}

// Size is a body size limit. Set false: the default (DefaultMaxBody);
// Bytes 0: no limit.
type Size struct {
	Set   bool
	Bytes int64
}

// Rate is N requests per Per (time.Second or time.Minute), nginx's "Nr/s"
// and "Nr/m". N 0 is no limit.
type Rate struct {
	N   int
	Per time.Duration
}

// Bounds of the options' values.
const (
	// DefaultMaxBody is the body limit of a site without portico.max-body:
	// nginx's own default (and so nginx-proxy's), 1 MiB.
	DefaultMaxBody = 1 << 20
	// MaxBodyCeiling is the largest limit portico.max-body accepts, and
	// what "0" (no limit) means on the dynamic path, where nginx needs one
	// static client_max_body_size (docs/nginx.md).
	MaxBodyCeiling = 16 << 30
	// MaxAllow is the most entries portico.allow may hold.
	MaxAllow = 64
	// MaxTimeout bounds portico.timeout and portico.connect-timeout.
	MaxTimeout = 24 * time.Hour
	// MaxRate bounds a rate's count, MaxBurst a burst.
	MaxRate  = 100000
	MaxBurst = 100000
	// MaxAuthFileName bounds portico.auth-file.
	MaxAuthFileName = 128
)

// DefaultBurst is the burst of a rate without portico.rate-burst: the
// rate's own count (10r/s serves 10 requests at once above the rate), so
// that a page's burst of requests is not refused.
func (r Rate) DefaultBurst() int { return r.N }

// EffectiveBurst is Burst, or DefaultBurst when unset.
func (a Access) EffectiveBurst() int {
	if a.Burst >= 0 {
		return a.Burst
	}
	return a.Rate.DefaultBurst()
}

// ParseAllow parses a comma-separated list of CIDRs or addresses (spaces
// around items allowed). An address is its /32 or /128; a prefix with host
// bits set is refused (it is most often a typo), as is a zone.
func ParseAllow(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, errors.New("empty item in the list")
		}
		var p netip.Prefix
		if strings.Contains(item, "/") {
			var err error
			p, err = netip.ParsePrefix(item)
			if err != nil {
				return nil, fmt.Errorf("%q is not a CIDR", clip(item))
			}
			if p.Masked() != p {
				return nil, fmt.Errorf("%q has host bits set; the network is %s", clip(item), p.Masked())
			}
		} else {
			a, err := netip.ParseAddr(item)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is not an IP address or CIDR", clip(item))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr() == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			// nginx reads it as "no address" and refuses the config; no
			// client has it.
			return nil, fmt.Errorf("%q is the broadcast address, never a client", clip(item))
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("%q: write an IPv4-mapped address as IPv4", clip(item))
		}
		out = append(out, p)
		if len(out) > MaxAllow {
			return nil, fmt.Errorf("more than %d entries", MaxAllow)
		}
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return slices.Compact(out), nil
}

// ParseSize parses an nginx size: digits with an optional k, m or g suffix
// (either case), as client_max_body_size takes it. "0" is no limit. A
// value over MaxBodyCeiling is refused.
func ParseSize(s string) (Size, error) {
	num, mult := s, int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			num, mult = s[:n-1], 1<<10
		case 'm', 'M':
			num, mult = s[:n-1], 1<<20
		case 'g', 'G':
			num, mult = s[:n-1], 1<<30
		}
	}
	v, err := digits(num, 11)
	if err != nil {
		return Size{}, fmt.Errorf("not an nginx size (digits with k, m or g, e.g. 10m): %w", err)
	}
	if v > MaxBodyCeiling/mult {
		return Size{}, fmt.Errorf("over the largest limit, %dg (use 0 for none)", MaxBodyCeiling>>30)
	}
	return Size{Set: true, Bytes: v * mult}, nil
}

// ParseTime parses an nginx time: one or more "<digits><unit>" parts
// (ms, s, m, h; "90" alone is seconds), as proxy_read_timeout takes it,
// from 1ms to MaxTimeout.
func ParseTime(s string) (time.Duration, error) {
	bad := fmt.Errorf("not an nginx time (e.g. 90s, 5m, 1m30s, 500ms)")
	if s == "" {
		return 0, bad
	}
	if v, err := digits(s, 6); err == nil {
		return checkTime(time.Duration(v) * time.Second)
	}
	var d time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		j := i
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		v, err := digits(rest[:i], 9)
		if err != nil || j == i {
			return 0, bad
		}
		unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute, "h": time.Hour}[rest[i:j]]
		if unit == 0 {
			return 0, bad
		}
		d += time.Duration(v) * unit
		if d > MaxTimeout {
			return 0, fmt.Errorf("over %s", MaxTimeout)
		}
		rest = rest[j:]
	}
	return checkTime(d)
}

func checkTime(d time.Duration) (time.Duration, error) {
	if d <= 0 {
		return 0, errors.New("must be at least 1ms")
	}
	if d > MaxTimeout {
		return 0, fmt.Errorf("over %s", MaxTimeout)
	}
	return d, nil
}

// ParseRate parses nginx's rate, "<n>r/s" or "<n>r/m", n from 1 to MaxRate.
func ParseRate(s string) (Rate, error) {
	num, per, ok := strings.Cut(s, "r/")
	bad := errors.New("not an nginx rate (e.g. 10r/s or 30r/m)")
	if !ok {
		return Rate{}, bad
	}
	r := Rate{}
	switch per {
	case "s":
		r.Per = time.Second
	case "m":
		r.Per = time.Minute
	default:
		return Rate{}, bad
	}
	v, err := digits(num, 6)
	if err != nil {
		return Rate{}, bad
	}
	if v < 1 || v > MaxRate {
		return Rate{}, fmt.Errorf("the count must be from 1 to %d", MaxRate)
	}
	r.N = int(v)
	return r, nil
}

// ParseBurst parses portico.rate-burst: a count from 0 to MaxBurst.
func ParseBurst(s string) (int, error) {
	v, err := digits(s, 6)
	if err != nil || v > MaxBurst {
		return 0, fmt.Errorf("not a count from 0 to %d", MaxBurst)
	}
	return int(v), nil
}

// ParseAuthFile checks portico.auth-file: a bare file name inside
// --auth-dir, [A-Za-z0-9._-]+, not starting with a dot (no "..", no hidden
// file, no path). Its content is checked where it is read (package
// htpasswd).
func ParseAuthFile(s string) (string, error) {
	if s == "" || len(s) > MaxAuthFileName {
		return "", fmt.Errorf("a file name of 1 to %d bytes", MaxAuthFileName)
	}
	if s[0] == '.' {
		return "", errors.New("a bare file name inside --auth-dir, not starting with a dot")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return "", errors.New("a bare file name inside --auth-dir: letters, digits, '.', '_' and '-' only, no path")
		}
	}
	return s, nil
}

// digits parses 1 to max ASCII digits.
func digits(s string, max int) (int64, error) {
	if s == "" || len(s) > max {
		return 0, fmt.Errorf("1 to %d digits", max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("digits only")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// String forms, as the dynamic table and the config write them.

// AllowString is the canonical comma-separated list.
func AllowString(ps []netip.Prefix) string {
	ss := make([]string, len(ps))
	for i, p := range ps {
		ss[i] = p.String()
	}
	return strings.Join(ss, ",")
}

// String is the size in nginx syntax, in bytes ("0": none).
func (s Size) String() string { return strconv.FormatInt(s.Bytes, 10) }

// String is the rate in nginx syntax.
func (r Rate) String() string {
	if r.Per == time.Minute {
		return strconv.Itoa(r.N) + "r/m"
	}
	return strconv.Itoa(r.N) + "r/s"
}

// Millis is d in whole milliseconds, nginx's "<n>ms".
func Millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// fields are the set access options as dynamic-table fields, sorted by name.
func (a Access) fields() []Field {
	var fs []Field
	if len(a.Allow) > 0 {
		fs = append(fs, Field{"allow", AllowString(a.Allow)})
	}
	if a.AuthFile != "" {
		fs = append(fs, Field{"auth-file", a.AuthFile})
	}
	if a.ConnectTimeout > 0 {
		fs = append(fs, Field{"connect-timeout", strconv.FormatInt(a.ConnectTimeout.Milliseconds(), 10)})
	}
	if a.MaxBody.Set {
		fs = append(fs, Field{"max-body", a.MaxBody.String()})
	}
	if a.Rate.N > 0 {
		// requests per minute and the burst: one field, so a table never
		// holds a burst without its rate.
		perMin := a.Rate.N
		if a.Rate.Per == time.Second {
			perMin *= 60
		}
		fs = append(fs, Field{"rate", strconv.Itoa(perMin) + "/" + strconv.Itoa(a.EffectiveBurst())})
	}
	if a.Timeout > 0 {
		fs = append(fs, Field{"timeout", strconv.FormatInt(a.Timeout.Milliseconds(), 10)})
	}
	return fs
}

// diff names the first access option that differs between a (a later
// claimant's) and owner; its label is the routing label's name, given by
// labels (option name -> label).
func (a Access) diff(owner Access) (name, mine, theirs string) {
	mf, of := fieldMap(a.fields()), fieldMap(owner.fields())
	for _, n := range []string{"allow", "auth-file", "connect-timeout", "max-body", "rate", "timeout"} {
		if mf[n] != of[n] {
			return n, orNoneRaw(mf[n]), orNoneRaw(of[n])
		}
	}
	return "", "", ""
}

func fieldMap(fs []Field) map[string]string {
	m := make(map[string]string, len(fs))
	for _, f := range fs {
		m[f.Name] = f.Value
	}
	return m
}

func orNoneRaw(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
