// Package acmetest runs a real ACME CA (Pebble) and a real authoritative DNS
// server (BIND 9's named) for tests: Pebble validates dns-01 challenges
// against BIND, and tests publish challenge records with lego's RFC 2136
// provider (dnsupdate) signed by a TSIG key. Everything listens on loopback
// ports chosen at start and lives in the test's temporary directory.
package acmetest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-acme/lego/v5/challenge"
	"github.com/go-acme/lego/v5/challenge/dns01"
	"github.com/go-acme/lego/v5/providers/dns/dnsupdate"
	"github.com/miekg/dns"
)

// DefaultZone is the zone BIND serves unless Options.Zone says otherwise. It
// is not under .test/.localhost/.internal/.local, which Portico hands to its
// local CA.
const DefaultZone = "portico.example"

// pebbleModule is the Go module Pebble is built from (a tool of go.mod).
const pebbleModule = "github.com/letsencrypt/pebble/v2"

// startTimeout bounds the wait for named and Pebble to answer.
const startTimeout = 30 * time.Second

// Options configures Start.
type Options struct {
	// Zone is the DNS zone BIND serves and may update; "" is DefaultZone.
	Zone string
	// Validity of the certificates Pebble issues (its default profile's
	// validityPeriod, whole seconds); 0 keeps Pebble's 90 days.
	Validity time.Duration
	// PropagationTimeout and PollingInterval of the DNS providers the Env
	// builds; 0 means 10s and 100ms.
	PropagationTimeout, PollingInterval time.Duration
	// HTTPPort is the port Pebble connects to for http-01 validation (the
	// test's Portico HTTP listener); 0 picks a free port nothing serves.
	HTTPPort int
	// AddressAll maps every name of the zone (a wildcard A record) to
	// 127.0.0.1, so that Pebble's http-01 requests for any test name reach
	// HTTPPort on loopback.
	AddressAll bool
}

// Env is a running Pebble and BIND pair.
type Env struct {
	// DirectoryURL is Pebble's ACME directory (HTTPS).
	DirectoryURL string
	// DirectoryCA is the PEM root of the directory's TLS certificate
	// (Pebble's test minica); it does not issue ACME certificates.
	DirectoryCA []byte
	// ManagementURL is Pebble's management interface (HTTPS, same CA).
	ManagementURL string
	// DNSAddr is BIND's host:port, UDP and TCP.
	DNSAddr string
	// Zone is the served zone, without trailing dot.
	Zone string
	// TSIGKey, TSIGSecret (base64) and TSIGAlgorithm ("hmac-sha256.")
	// authorise dynamic updates of TXT records in Zone.
	TSIGKey, TSIGSecret, TSIGAlgorithm string

	dir                 string
	opts                Options
	pebbleBin, pebbleCf string
	pebble              *proc
}

// Start starts BIND and Pebble for t and stops them when t ends. It fails
// t if either cannot start (named missing, the Pebble build failing).
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Zone == "" {
		opts.Zone = DefaultZone
	}
	opts.Zone = strings.TrimSuffix(strings.ToLower(opts.Zone), ".")
	if opts.PropagationTimeout <= 0 {
		opts.PropagationTimeout = 10 * time.Second
	}
	if opts.PollingInterval <= 0 {
		opts.PollingInterval = 100 * time.Millisecond
	}
	e := &Env{dir: t.TempDir(), opts: opts, Zone: opts.Zone}
	e.startNamed(t)
	e.preparePebble(t)
	e.StartCA(t)
	return e
}

// Root fetches the PEM root that issues Pebble's certificates. Pebble makes
// a new one each time it starts.
func (e *Env) Root(t testing.TB) []byte {
	t.Helper()
	resp, err := e.httpClient(t).Get(e.ManagementURL + "/roots/0")
	if err != nil {
		t.Fatalf("pebble root: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble root: status %d: %v %s", resp.StatusCode, err, b)
	}
	return b
}

// Intermediates fetches the PEM of Pebble's current intermediates.
func (e *Env) Intermediates(t testing.TB) []byte {
	t.Helper()
	resp, err := e.httpClient(t).Get(e.ManagementURL + "/intermediates/0")
	if err != nil {
		t.Fatalf("pebble intermediates: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble intermediates: status %d: %v %s", resp.StatusCode, err, b)
	}
	return b
}

// DNSProvider is lego's RFC 2136 provider for the Env's zone and TSIG key,
// with the Env's fast propagation settings and no wait between
// authorizations.
func (e *Env) DNSProvider(t testing.TB) challenge.Provider {
	t.Helper()
	return e.provider(t, e.TSIGSecret)
}

// BadDNSProvider is DNSProvider with a wrong TSIG secret: BIND refuses its
// updates.
func (e *Env) BadDNSProvider(t testing.TB) challenge.Provider {
	t.Helper()
	return e.provider(t, randomSecret(t))
}

func (e *Env) provider(t testing.TB, secret string) challenge.Provider {
	p, err := dnsupdate.NewDNSProviderConfig(&dnsupdate.Config{
		Nameserver:         e.DNSAddr,
		DNSTimeout:         5 * time.Second,
		Zones:              []string{e.Zone},
		TSIGAlgorithm:      e.TSIGAlgorithm,
		TSIGKey:            e.TSIGKey,
		TSIGSecret:         secret,
		PropagationTimeout: e.opts.PropagationTimeout,
		PollingInterval:    e.opts.PollingInterval,
		TTL:                1,
		SequenceInterval:   time.Millisecond,
	})
	if err != nil {
		t.Fatalf("dnsupdate provider: %v", err)
	}
	return p
}

// Query asks BIND for name's records of type qtype (e.g. dns.TypeTXT).
func (e *Env) Query(t testing.TB, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, e.DNSAddr)
	if err != nil {
		t.Fatalf("query %s %s at %s: %v", name, dns.TypeToString[qtype], e.DNSAddr, err)
	}
	return r
}

// StopCA stops Pebble. Its state (accounts, orders) is in memory and lost.
func (e *Env) StopCA(t testing.TB) {
	t.Helper()
	if e.pebble != nil {
		e.pebble.stop()
		e.pebble = nil
	}
}

// StartCA starts Pebble on the Env's ports (after StopCA); it comes up with
// a new root and no accounts.
func (e *Env) StartCA(t testing.TB) {
	t.Helper()
	if e.pebble != nil {
		t.Fatal("pebble already running")
	}
	cmd := exec.Command(e.pebbleBin, "-config", e.pebbleCf, "-dnsserver", e.DNSAddr)
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_WFE_NONCEREJECT=0",
		"PEBBLE_VA_ALWAYS_VALID=0",
		"PEBBLE_AUTHZREUSE=0",
	)
	p := startProc(t, "pebble", cmd, filepath.Join(e.dir, "pebble.log"))
	e.pebble = p
	hc := e.httpClient(t)
	waitFor(t, p, "pebble directory "+e.DirectoryURL, func() error {
		resp, err := hc.Get(e.DirectoryURL)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// httpClient trusts the directory's TLS root.
func (e *Env) httpClient(t testing.TB) *http.Client {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(e.DirectoryCA) {
		t.Fatal("pebble minica: no certificate")
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// startNamed writes a zone, a TSIG key and a named.conf, starts named and
// waits until it answers the zone's SOA over UDP and TCP.
func (e *Env) startNamed(t testing.TB) {
	t.Helper()
	dir := filepath.Join(e.dir, "named")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e.TSIGKey = "portico-test-key."
	e.TSIGAlgorithm = dns.HmacSHA256
	out, err := exec.Command("tsig-keygen", "-a", "hmac-sha256", strings.TrimSuffix(e.TSIGKey, ".")).Output()
	if err != nil {
		t.Fatalf("tsig-keygen (BIND 9 utilities needed): %v", err)
	}
	m := regexp.MustCompile(`secret "([^"]+)"`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("tsig-keygen: no secret in %q", out)
	}
	e.TSIGSecret = string(m[1])
	keyFile := filepath.Join(dir, "tsig.key")
	writeFile(t, keyFile, string(out))

	z := e.Zone
	wild := ""
	if e.opts.AddressAll {
		wild = "*\tIN A   127.0.0.1\n"
	}
	writeFile(t, filepath.Join(dir, "zone.db"), fmt.Sprintf(`$TTL 60
@	IN SOA ns1.%[1]s. hostmaster.%[1]s. 1 60 60 600 1
@	IN NS  ns1.%[1]s.
ns1	IN A   127.0.0.1
@	IN A   127.0.0.1
www	IN A   127.0.0.1
%[2]s`, z, wild))

	port := freePort(t, true)
	e.DNSAddr = net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	conf := filepath.Join(dir, "named.conf")
	writeFile(t, conf, fmt.Sprintf(`include %[1]q;
options {
	directory %[2]q;
	pid-file %[3]q;
	session-keyfile %[4]q;
	managed-keys-directory %[2]q;
	listen-on port %[5]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
controls { };
zone %[6]q {
	type primary;
	file %[7]q;
	journal %[8]q;
	update-policy { grant %[9]s zonesub TXT; };
};
`, keyFile, dir, filepath.Join(dir, "named.pid"), filepath.Join(dir, "session.key"), port,
		z, filepath.Join(dir, "zone.db"), filepath.Join(dir, "zone.db.jnl"), e.TSIGKey))

	named, err := exec.LookPath("named")
	if err != nil {
		for _, p := range []string{"/usr/sbin/named", "/usr/local/sbin/named"} {
			if _, serr := os.Stat(p); serr == nil {
				named, err = p, nil
				break
			}
		}
	}
	if err != nil {
		t.Fatalf("named (BIND 9) not found: %v", err)
	}
	cmd := exec.Command(named, "-g", "-4", "-n", "1", "-c", conf)
	cmd.Dir = dir
	p := startProc(t, "named", cmd, filepath.Join(e.dir, "named.log"))
	t.Cleanup(p.stop)
	soa := new(dns.Msg).SetQuestion(dns.Fqdn(z), dns.TypeSOA)
	waitFor(t, p, "named at "+e.DNSAddr, func() error {
		for _, network := range []string{"udp", "tcp"} {
			r, _, err := (&dns.Client{Net: network, Timeout: time.Second}).Exchange(soa, e.DNSAddr)
			if err != nil {
				return err
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
				return fmt.Errorf("SOA %s over %s: %s", z, network, dns.RcodeToString[r.Rcode])
			}
		}
		return nil
	})
}

// preparePebble builds Pebble (once per version, cached) and writes its
// configuration with free ports.
func (e *Env) preparePebble(t testing.TB) {
	t.Helper()
	modDir, version := pebbleModuleDir(t)
	e.pebbleBin = buildPebble(t, version)
	ca, err := os.ReadFile(filepath.Join(modDir, "test", "certs", "pebble.minica.pem"))
	if err != nil {
		t.Fatalf("pebble minica: %v", err)
	}
	e.DirectoryCA = ca

	httpPort := e.opts.HTTPPort
	if httpPort == 0 {
		httpPort = freePort(t, false)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t, false))
	mgmt := fmt.Sprintf("127.0.0.1:%d", freePort(t, false))
	e.DirectoryURL = "https://" + listen + "/dir"
	e.ManagementURL = "https://" + mgmt
	type profile struct {
		Description    string `json:"description"`
		ValidityPeriod uint64 `json:"validityPeriod,omitempty"`
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    filepath.Join(modDir, "test", "certs", "localhost", "cert.pem"),
		"privateKey":                     filepath.Join(modDir, "test", "certs", "localhost", "key.pem"),
		"httpPort":                       httpPort,
		"tlsPort":                        freePort(t, false),
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"keyAlgorithm":                   "ecdsa",
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles": map[string]profile{"default": {
			Description:    "portico tests",
			ValidityPeriod: uint64(e.opts.Validity / time.Second),
		}},
	}}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	e.pebbleCf = filepath.Join(e.dir, "pebble.json")
	writeFile(t, e.pebbleCf, string(b))
}

// pebbleModuleDir locates the Pebble module of this build's go.mod,
// downloading it first on a machine whose module cache lacks it (building
// the tests does not fetch it: it is a tool dependency).
func pebbleModuleDir(t testing.TB) (dir, version string) {
	t.Helper()
	out, err := exec.Command(goBin(), "mod", "download", "-json", pebbleModule).Output()
	if err != nil {
		t.Fatalf("go mod download %s: %v %s %s", pebbleModule, err, out, stderrOf(err))
	}
	var m struct{ Dir, Version, Error string }
	if err := json.Unmarshal(out, &m); err != nil || m.Dir == "" {
		t.Fatalf("go mod download %s: no module dir (%v %s): %s", pebbleModule, err, m.Error, out)
	}
	return m.Dir, m.Version
}

// buildPebble builds Pebble into a per-user cache keyed by version, so one
// build serves every test process; a rename makes concurrent builds safe.
func buildPebble(t testing.TB, version string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "portico-test", "pebble-"+version+"-"+runtime.GOOS+"-"+runtime.GOARCH)
	bin := filepath.Join(dir, "pebble")
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("pebble cache: %v", err)
	}
	tmp, err := os.CreateTemp(dir, "pebble-build-*")
	if err != nil {
		t.Fatalf("pebble cache: %v", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command(goBin(), "build", "-o", tmp.Name(), pebbleModule+"/cmd/pebble")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build pebble: %v\n%s", err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		t.Fatalf("pebble cache: %v", err)
	}
	return bin
}

func goBin() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// proc is a child process whose output goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // valid after done
}

// startProc starts cmd with its output in logFile, and prints the log if t
// fails.
func startProc(t testing.TB, name string, cmd *exec.Cmd, logFile string) *proc {
	t.Helper()
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("--- %s log (%s) ---\n%s", name, logFile, b)
		}
	})
	return p
}

// stop kills the process and waits for it; it may be called twice.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// waitFor polls ready until it succeeds, the process exits or the start
// timeout passes; the last two fail t.
func waitFor(t testing.TB, p *proc, what string, ready func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = ready(); last == nil {
			return
		}
		select {
		case <-p.done:
			b, _ := os.ReadFile(p.log)
			t.Fatalf("%s exited before %s answered: %v\n%s", p.name, what, p.err, b)
		case <-ctx.Done():
			t.Fatalf("%s did not answer within %v: %v", what, startTimeout, last)
		case <-tick.C:
		}
	}
}

// freePort returns a loopback port free for TCP (and UDP if udp).
func freePort(t testing.TB, udp bool) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !udp {
			l.Close()
			return port
		}
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free loopback port")
	return 0
}

func writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomSecret(t testing.TB) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// PinLegoResolver points lego's process-wide DNS client (used for CNAME
// following in dns01.GetChallengeInfo and lego's own propagation check) at a
// closed loopback port, so tests send no DNS query off the machine. It
// mutates process state: call it from TestMain before tests run.
func PinLegoResolver() {
	addr := "127.0.0.1:9" // discard; nothing answers on loopback
	if pc, err := net.ListenPacket("udp", "127.0.0.1:0"); err == nil {
		addr = pc.LocalAddr().String()
		pc.Close()
	}
	dns01.SetDefaultClient(dns01.NewClient(&dns01.Options{
		RecursiveNameservers: []string{addr},
		Timeout:              time.Second,
	}))
}

// Order is one ACME order Pebble created, as its log tells.
type Order struct {
	// ID is Pebble's order id.
	ID string
	// Serial is the serial of the certificate issued for the order, in
	// lower-case hex without leading zeros (as big.Int.Text(16) and
	// Portico's store.CertBundle write it); "" while none was issued.
	Serial string
}

// Orders is every order Pebble created since the Env started (across
// StopCA/StartCA), in creation order, read from Pebble's log: Pebble has
// no management endpoint that lists orders. A test counts orders per
// certificate with it: every order issued at most one certificate, so
// N certificates stored from exactly N orders, each serial from its own
// order, means one order per certificate.
func (e *Env) Orders(t testing.TB) []Order {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "pebble.log"))
	if err != nil {
		t.Fatalf("pebble log: %v", err)
	}
	return ParseOrders(b)
}

var (
	addedOrderRE  = regexp.MustCompile(`Added order "([^"]+)" to the db`)
	issuedOrderRE = regexp.MustCompile(`Issued certificate serial ([0-9a-fA-F]+) for order (\S+)`)
)

// ParseOrders reads the orders and their issued serials from Pebble's log
// ("Added order %q to the db", "Issued certificate serial %s for order
// %s"). It is pure.
func ParseOrders(log []byte) []Order {
	var out []Order
	at := map[string]int{}
	for _, line := range strings.Split(string(log), "\n") {
		if m := addedOrderRE.FindStringSubmatch(line); m != nil {
			if _, dup := at[m[1]]; !dup {
				at[m[1]] = len(out)
				out = append(out, Order{ID: m[1]})
			}
			continue
		}
		if m := issuedOrderRE.FindStringSubmatch(line); m != nil {
			serial, ok := new(big.Int).SetString(m[1], 16)
			if i, known := at[m[2]]; known && ok {
				out[i].Serial = serial.Text(16)
			}
		}
	}
	return out
}
