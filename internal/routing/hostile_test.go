package routing

import (
	"bufio"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/idna"

	"github.com/portico/portico/internal/store"
)

// hostileForm is one place a hostile value is put.
type hostileForm struct {
	key string
	env bool
}

// hostileForms is every label and env var routing reads.
func hostileForms() []hostileForm {
	var fs []hostileForm
	for _, k := range []string{LabelVhost, LabelPort, LabelProtocol, LabelNetwork, LabelDefault, LabelEnable, LabelHTTPS, LabelHSTS, LabelAddress, LabelRoot,
		LabelPath, LabelStripPath, LegacyVhost, LegacyPort, LegacyProtocol, LegacyDefault} {
		fs = append(fs, hostileForm{key: k})
	}
	for _, k := range siteoptsHostileKeys() {
		fs = append(fs, hostileForm{key: k})
	}
	for _, k := range AccessLabels {
		fs = append(fs, hostileForm{key: k})
	}
	for _, k := range AllowedEnv {
		fs = append(fs, hostileForm{key: k, env: true})
	}
	return fs
}

func isVhostForm(key string) bool {
	return key == LabelVhost || key == LegacyVhost || key == EnvVirtualHost
}

// loadHostile reads testdata/hostile.txt.
func loadHostile(t testing.TB) []string {
	t.Helper()
	f, err := os.Open("testdata/hostile.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vals []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.Unquote(line)
		if err != nil {
			t.Fatalf("testdata/hostile.txt:%d: %v", n, err)
		}
		vals = append(vals, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vals) < 60 {
		t.Fatalf("hostile corpus has %d values, want at least 60", len(vals))
	}
	return vals
}

// victim puts value into form f of an otherwise valid container, with a valid
// vhost unless f is itself a vhost form.
func victim(f hostileForm, value, ipv4 string) store.Container {
	c := ctr("victim", map[string]string{}, withIP(ipv4), withEnv())
	if !isVhostForm(f.key) {
		c.Labels[LabelVhost] = "victim.test"
	}
	if f.key == LabelRoot || f.key == EnvVirtualRoot {
		// A root is read only for FastCGI: make the value count.
		c.Labels[LabelProtocol] = ProtoFastCGI
	}
	if f.env {
		c.Env[f.key] = value
	} else {
		c.Labels[f.key] = value
	}
	return c
}

func bystander() store.Container {
	return ctr("bystander", labels(LabelVhost, "bystander.test", LabelPort, "8080"), withIP("172.18.0.3"))
}

// checkHostile builds the victim beside a valid bystander and asserts the
// invariant: the victim is either rejected with error problems that name it,
// the label and the value (label "" for a bad value in the record), or accepted
// with every rendered field matching its strict pattern; and the bystander is
// unaffected.
//
// badRecord allows errors with no label too: the record itself (an address) is
// hostile.
func checkHostile(t *testing.T, c store.Container, label, value string, badRecord bool) {
	t.Helper()
	checkHostileOn(t, c, label, value, badRecord, Options{Network: "proxy"})
}

// checkHostileOn is checkHostile for a proxy with opts; the bystander is
// on opts' node.
func checkHostileOn(t *testing.T, c store.Container, label, value string, badRecord bool, opts Options) {
	t.Helper()
	res := Build([]store.Container{c, bystander()}, opts)

	wantBy := Service{ContainerID: "id-bystander", Container: "bystander", Node: "node1",
		Hosts: []string{"bystander.test"}, CertHosts: []string{"bystander.test"}, Port: 8080, Protocol: ProtoHTTP,
		Network: "proxy", Addr: "172.18.0.3:8080", HTTPS: HTTPSAuto, Live: true}
	i := slices.IndexFunc(res.Services, func(s Service) bool { return s.Container == "bystander" })
	if i < 0 || !reflect.DeepEqual(res.Services[i], wantBy) {
		t.Fatalf("bystander harmed: services %+v", res.Services)
	}
	j := slices.IndexFunc(res.Routes, func(r Route) bool { return r.Host == "bystander.test" })
	if j < 0 || !slices.Equal(res.Routes[j].Upstreams, []string{"172.18.0.3:8080"}) || !slices.Equal(res.Routes[j].Containers, []string{"bystander"}) {
		t.Fatalf("bystander route harmed: %+v", res.Routes)
	}

	rejected := false
	for _, p := range res.Problems {
		if s := p.Error(); strings.ContainsAny(s, "\n\r\x00") {
			t.Errorf("problem text holds raw control bytes: %q", s)
		}
		if p.Container != "victim" {
			t.Errorf("problem on another container: %v", p.Error())
			continue
		}
		if p.Severity != SeverityError {
			continue
		}
		rejected = true
		if badRecord && p.Label == "" && p.ContainerID == c.ID || p.More > 0 && p.ContainerID == c.ID {
			continue // the record itself is hostile, or the summary of the rest
		}
		if p.ContainerID != c.ID || p.Label != label || !namesValue(p, label, value) {
			t.Errorf("error problem does not name the container, label %s and value %.200q: %.500v", label, value, p.Error())
		}
	}
	if rejected && slices.ContainsFunc(res.Services, func(s Service) bool { return s.Container == "victim" }) {
		t.Errorf("rejected victim still has a service: %+v", res.Services)
	}
	if bad := unsafeFields(res); len(bad) > 0 {
		t.Errorf("accepted with unsafe fields: %v", bad)
	}
	if bad := unsafeSiteFields(res); len(bad) > 0 {
		t.Errorf("accepted with unsafe option fields: %v", bad)
	}
}

// namesValue reports whether p names value: the whole value, or for a host
// list one of its items; either cut to 128 bytes, with the full length.
func namesValue(p Problem, label, value string) bool {
	names := func(v string) bool {
		c, cut := clip(v, maxItemBytes)
		return p.Value == c && (!cut || p.ValueBytes == len(v))
	}
	if names(value) {
		return true
	}
	if !isListKey(label) {
		return false
	}
	for item := range strings.FieldsFuncSeq(value, isHostSep) {
		if names(item) {
			return true
		}
	}
	return false
}

func TestHostileValues(t *testing.T) {
	vals := loadHostile(t)
	for _, f := range hostileForms() {
		t.Run(f.key, func(t *testing.T) {
			for _, v := range vals {
				checkHostile(t, victim(f, v, "172.18.0.2"), f.key, v, false)
				if t.Failed() {
					t.Fatalf("value %q", v)
				}
			}
		})
	}
	t.Run("label keys", func(t *testing.T) {
		for _, v := range vals {
			c := ctr("victim", labels(LabelVhost, "victim.test", LabelPrefix+v, v))
			res := Build([]store.Container{c, bystander()}, Options{Network: "proxy"})
			if hasError(res.Problems) {
				t.Errorf("unknown label %q is an error: %v", LabelPrefix+v, res.Problems)
			}
			for _, p := range res.Problems {
				if s := p.Error(); strings.ContainsAny(s, "\n\r\x00") {
					t.Errorf("problem text holds raw control bytes: %q", s)
				}
			}
			if len(res.Routes) != 2 {
				t.Errorf("routes %+v", res.Routes)
			}
		}
	})
	t.Run("header label names", func(t *testing.T) {
		for _, v := range vals {
			for _, pre := range []string{LabelResponseHeader, LabelRequestHeader} {
				checkHostile(t, ctr("victim", labels(LabelVhost, "victim.test", pre+v, "x")), Clip(pre+v, maxItemBytes), "x", false) // a problem holds the key cut to 128 bytes
			}
		}
	})
	t.Run("record addresses", func(t *testing.T) {
		for _, v := range vals {
			checkHostile(t, ctr("victim", vhost("victim.test"), withIP(v)), "", "", true)
			c := ctr("victim", vhost("victim.test"), withNets(map[string]store.Network{"proxy": {IPv6: v}}))
			checkHostile(t, c, "", "", true)
			c = ctr("victim", vhost("victim.test"), withNets(map[string]store.Network{v: {IPv4: "172.18.0.2"}}))
			checkHostile(t, c, "", "", true)
			// A record from another node: its host address and its
			// bindings' addresses are the record's too.
			c = ctr("victim", vhost("victim.test"), withNode("node2"), func(c *store.Container) { c.HostAddr = v },
				withPorts(store.Port{Port: 80, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080}))
			checkHostileOn(t, c, "", "", true, Options{Network: "proxy", Node: "node1"})
			c = ctr("victim", vhost("victim.test"), withNode("node2"), func(c *store.Container) { c.HostAddr = "10.0.0.2" },
				withPorts(store.Port{Port: 80, Proto: "tcp", HostIP: v, HostPort: 8080}))
			checkHostileOn(t, c, "", "", true, Options{Network: "proxy", Node: "node1"})
		}
	})
	t.Run("container names", func(t *testing.T) {
		for _, v := range vals {
			c := ctr(v, vhost("victim.test"))
			res := Build([]store.Container{c, bystander()}, Options{Network: "proxy"})
			if bad := unsafeFields(res); len(bad) > 0 {
				t.Errorf("name %q: unsafe fields %v", v, bad)
			}
		}
	})
}

// FuzzParseService asserts the hostile-value invariant for arbitrary values in
// any label or env form, and for arbitrary record addresses. repeat is the
// size dimension: the value is repeated (comma separated) that many times,
// up to about 1 MB, and the problems must stay bounded.
func FuzzParseService(f *testing.F) {
	forms := hostileForms()
	for _, v := range loadHostile(f) {
		for i := range forms {
			f.Add(uint8(i), v, "172.18.0.2", uint16(1))
		}
		f.Add(uint8(0), "victim.test", v, uint16(1))
	}
	for i, fm := range forms {
		if fm.key != LabelVhost && fm.key != EnvLetsEncryptHost && fm.key != LabelPort {
			continue
		}
		for _, rep := range []uint16{101, 5000, 65535} {
			f.Add(uint8(i), "a_b", "172.18.0.2", rep)
			f.Add(uint8(i), "h.test", "172.18.0.2", rep)
		}
	}
	// Valid paths and rewrites, so the fuzzer starts from accepted values.
	for i, fm := range forms {
		if fm.key == LabelPath || fm.key == EnvVirtualPath || fm.key == EnvVirtualDest {
			for _, v := range []string{"/", "/api", "/api/v2/", "/a.b(c)*+", "/x!&,=:@~-_", "/" + strings.Repeat("a", 255)} {
				f.Add(uint8(i), v, "172.18.0.2", uint16(1))
			}
		}
	}
	f.Fuzz(func(t *testing.T, form uint8, value, ipv4 string, repeat uint16) {
		if n := int(repeat); n > 1 && len(value) > 0 {
			n = min(n, (1<<20)/(len(value)+1))
			value = strings.TrimSuffix(strings.Repeat(value+",", n), ",")
		}
		fm := forms[int(form)%len(forms)]
		c := victim(fm, value, ipv4)
		svc, probs := ParseService(c, Options{Network: "proxy"})
		if hasError(probs) {
			if !reflect.DeepEqual(svc, Service{}) {
				t.Fatalf("rejected but service returned: %+v", svc)
			}
		} else if len(svc.Hosts) > 0 {
			if bad := unsafeFields(Result{Services: []Service{svc}}); len(bad) > 0 {
				t.Fatalf("accepted with unsafe fields: %v", bad)
			}
		}
		checkBounded(t, probs)
		checkHostile(t, c, fm.key, value, ipv4 != "172.18.0.2")
	})
}

// checkBounded asserts the problem bounds: at most MaxProblems plus one
// summary per container, each a short text.
func checkBounded(t *testing.T, probs []Problem) {
	t.Helper()
	per := map[string]int{}
	for _, p := range probs {
		per[p.Node+"/"+p.ContainerID]++
		if s := p.Error(); len(s) > 2048 {
			t.Errorf("problem text of %d bytes: %.200q", len(s), s)
		}
		if len(p.Value) > maxItemBytes || len(p.Label) > maxItemBytes+len("…") {
			t.Errorf("problem holds %d bytes of value, %d of label", len(p.Value), len(p.Label))
		}
	}
	for k, n := range per {
		if n > MaxProblems+1 {
			t.Errorf("container %s has %d problems, over %d plus a summary", k, n, MaxProblems)
		}
	}
}

// FuzzPlainLDHAgreesWithIDNA checks the fast path of normalizeHost: a name
// plainLDH lets skip IDNA would have come out of idna.Lookup unchanged, or
// been rejected by checkLDH anyway.
func FuzzPlainLDHAgreesWithIDNA(f *testing.F) {
	for _, v := range loadHostile(f) {
		f.Add(v)
	}
	for _, v := range []string{"a.test", "-a.test", "a-.test", "ab--c.test", "xn--zca", "a..b", "1.2.3.4", ""} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainLDH(s) || checkLDH(s) != nil {
			return
		}
		got, err := idna.Lookup.ToASCII(s)
		if err != nil || got != s {
			t.Fatalf("plainLDH accepted %q but idna.Lookup gives %q, %v", s, got, err)
		}
	})
}
