package supervise

import (
	"os"
	"strings"
	"testing"
)

// Which process named in the pid file a restarted portico adopts: only a
// live nginx master of this prefix and main config, from the same binary,
// of our user, with workers. Everything else is started fresh.
func TestAdoptable(t *testing.T) {
	const prefix, main, bin, uid = "/var/lib/portico/nginx", "/var/lib/portico/nginx/nginx.conf", "/usr/sbin/nginx", 0
	good := masterInfo{
		Cmdline: []byte("nginx: master process nginx -p /var/lib/portico/nginx -c /var/lib/portico/nginx/nginx.conf -g daemon off;"),
		Exe:     bin, UID: uid, State: 'S', Workers: 2,
	}
	for _, tt := range []struct {
		name string
		edit func(*masterInfo)
		why  string // "" = adopt
	}{
		{"healthy master", func(*masterInfo) {}, ""},
		{"argv not rewritten yet", func(m *masterInfo) {
			m.Cmdline = []byte("nginx\x00-p\x00/var/lib/portico/nginx/\x00-c\x00/var/lib/portico/nginx/nginx.conf\x00")
		}, "not an nginx master"},
		{"worker", func(m *masterInfo) { m.Cmdline = []byte("nginx: worker process") }, "not an nginx master"},
		{"other prefix", func(m *masterInfo) {
			m.Cmdline = []byte("nginx: master process nginx -p /srv/other -c /var/lib/portico/nginx/nginx.conf")
		}, "not an nginx master"},
		{"other main config", func(m *masterInfo) {
			m.Cmdline = []byte("nginx: master process nginx -p /var/lib/portico/nginx -c /tmp/nginx.conf")
		}, "another main config"},
		{"pid reused by a shell", func(m *masterInfo) { m.Cmdline = []byte("bash\x00") }, "not an nginx master"},
		{"other user", func(m *masterInfo) { m.UID = 1000 }, "uid 1000"},
		{"binary upgraded (deleted)", func(m *masterInfo) { m.Exe = bin + " (deleted)" }, "deleted"},
		{"other binary", func(m *masterInfo) { m.Exe = "/opt/nginx/sbin/nginx" }, "/opt/nginx"},
		{"exe unreadable", func(m *masterInfo) { m.Exe = "" }, "runs"},
		{"zombie", func(m *masterInfo) { m.State = 'Z' }, "not running"},
		{"no workers", func(m *masterInfo) { m.Workers = 0 }, "no workers"},
	} {
		m := good
		tt.edit(&m)
		ok, why := adoptable(m, prefix, main, bin, uid)
		if ok != (tt.why == "") || !strings.Contains(why, tt.why) {
			t.Errorf("%s: adoptable = %v %q, want why %q", tt.name, ok, why, tt.why)
		}
	}
}

func TestParseStat(t *testing.T) {
	for _, tt := range []struct {
		in    string
		state byte
		start uint64
		bad   bool
	}{
		{"1234 (nginx) S 1 1234 1234 0 -1 4194624 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 200", 'S', 98765, false},
		{"1234 (a b) c)) Z 1 1234 1234 0 -1 4194624 100 0 0 0 1 2 0 0 20 0 1 0 42 1000 200", 'Z', 42, false},
		{"1234 (nginx) S 1 2", 0, 0, true},
		{"garbage", 0, 0, true},
	} {
		st, start, err := parseStat([]byte(tt.in))
		if (err != nil) != tt.bad || st != tt.state || start != tt.start {
			t.Errorf("parseStat(%q) = %c %d %v", tt.in, st, start, err)
		}
	}
	// Our own entry parses, with a start time.
	if st, start, err := procStat(os.Getpid()); err != nil || st == 0 || start == 0 {
		t.Errorf("own stat: %c %d %v", st, start, err)
	}
}

func TestParseParent(t *testing.T) {
	for _, tt := range []struct {
		in   string
		ppid int
		bad  bool
	}{
		{"1234 (nginx) S 77 1234 1234 0 -1", 77, false},
		{"1234 (a b) c)) Z 1 1234", 1, false},
		{"1234 (nginx) S", 0, true},
		{"garbage", 0, true},
	} {
		ppid, err := parseParent([]byte(tt.in))
		if (err != nil) != tt.bad || ppid != tt.ppid {
			t.Errorf("parseParent(%q) = %d %v", tt.in, ppid, err)
		}
	}
	if ownChild(os.Getpid()) {
		t.Errorf("this process is its own child")
	}
}
