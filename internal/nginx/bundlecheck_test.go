package nginx

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// hostileBundle is one bundle of the corpus and what the stage must say.
type hostileBundle struct {
	b      store.CertBundle
	reject string // substring of the error; "" means accepted
}

// hostileBundles is the corpus of certificate bundles for host: each
// damaged in one way, plus unusual bundles that are fine.
func hostileBundles(t testing.TB, host string) map[string]hostileBundle {
	t.Helper()
	good := func() store.CertBundle { return selfSigned(t, 7, host) }
	mod := func(f func(*store.CertBundle)) store.CertBundle { b := good(); f(&b); return b }
	other := selfSigned(t, 8, host)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ecKey)
	p8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	big := make([]byte, 60<<10)
	var inters string
	for i := range render.MaxChainCerts {
		inters += selfSigned(t, int64(100+i), fmt.Sprintf("i%d.test", i)).CertPEM
	}
	wrap76 := func(p string) string { // same block, 76-column base64
		blk, _ := pem.Decode([]byte(p))
		enc := base64.StdEncoding.EncodeToString(blk.Bytes)
		var sb strings.Builder
		sb.WriteString("-----BEGIN " + blk.Type + "-----\n")
		for len(enc) > 76 {
			sb.WriteString(enc[:76] + "\n")
			enc = enc[76:]
		}
		sb.WriteString(enc + "\n-----END " + blk.Type + "-----\n")
		return sb.String()
	}
	return map[string]hostileBundle{
		"crlf":          {mod(func(b *store.CertBundle) { b.CertPEM = strings.ReplaceAll(b.CertPEM, "\n", "\r\n") }), "CRLF"},
		"crlf key":      {mod(func(b *store.CertBundle) { b.KeyPEM = strings.ReplaceAll(b.KeyPEM, "\n", "\r\n") }), "CRLF"},
		"leading blank": {mod(func(b *store.CertBundle) { b.CertPEM = "\n" + b.CertPEM }), "line 1 is blank"},
		"blank between": {mod(func(b *store.CertBundle) {
			b.CertPEM += "\n"
			b.ChainPEM = inters[:strings.Index(inters, "-----END")+26]
		}), "is blank"},
		"trailing blank":   {mod(func(b *store.CertBundle) { b.KeyPEM += "\n" }), "is blank"},
		"junk between":     {mod(func(b *store.CertBundle) { b.ChainPEM = "junk\n" + b.CertPEM }), "text outside a PEM block"},
		"no final newline": {mod(func(b *store.CertBundle) { b.CertPEM = strings.TrimSuffix(b.CertPEM, "\n") }), "not canonical"},
		"76 columns":       {mod(func(b *store.CertBundle) { b.CertPEM = wrap76(b.CertPEM) }), "not canonical"},
		"pem header": {mod(func(b *store.CertBundle) {
			b.KeyPEM = strings.Replace(b.KeyPEM, "KEY-----\n", "KEY-----\nProc-Type: 4,ENCRYPTED\n\n", 1)
		}), "not allowed in PEM"},
		"key mismatch": {mod(func(b *store.CertBundle) { b.KeyPEM = other.KeyPEM }), "private key does not match public key"},
		"rsa label, ec key": {mod(func(b *store.CertBundle) {
			b.KeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: p8}))
		}), "RSA PRIVATE KEY block"},
		"dsa label":    {mod(func(b *store.CertBundle) { b.KeyPEM = strings.ReplaceAll(b.KeyPEM, "PRIVATE KEY", "DSA PRIVATE KEY") }), `"DSA PRIVATE KEY"`},
		"key in chain": {mod(func(b *store.CertBundle) { b.ChainPEM = b.KeyPEM }), `block 2 is "PRIVATE KEY"`},
		"two keys":     {mod(func(b *store.CertBundle) { b.KeyPEM += b.KeyPEM }), "2 PEM blocks"},
		"huge": {mod(func(b *store.CertBundle) {
			b.ChainPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: big}))
		}), "more than the 65536 allowed"},
		"many certs":   {mod(func(b *store.CertBundle) { b.ChainPEM = inters }), "11 certificates"},
		"non-PEM":      {mod(func(b *store.CertBundle) { b.CertPEM = "hello" }), "text outside a PEM block"},
		"empty":        {mod(func(b *store.CertBundle) { b.CertPEM, b.ChainPEM = "", "" }), "no PEM block"},
		"binary":       {mod(func(b *store.CertBundle) { b.KeyPEM = string(ecDER) }), "key: "},
		"nginx syntax": {mod(func(b *store.CertBundle) { b.CertPEM = "-----BEGIN CERTIFICATE-----\n\"; } server { $host\n" }), "not allowed in PEM"},
		// Fine, though unusual.
		"expired": {expired(t, host), ""},
		"ec key with params": {mod(func(b *store.CertBundle) {
			k, _ := x509.ParsePKCS8PrivateKey(pemBytes(b.KeyPEM))
			der, _ := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
			b.KeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})) +
				string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
		}), ""},
		"rsa": {rsaBundle(t, host), ""},
	}
}

func pemBytes(p string) []byte { b, _ := pem.Decode([]byte(p)); return b.Bytes }

func expired(t testing.TB, host string) store.CertBundle {
	b := selfSignedAt(t, 9, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour), host)
	return b
}

func rsaBundle(t testing.TB, host string) store.CertBundle {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b := signWith(t, 10, time.Now().Add(-time.Hour), time.Now().Add(time.Hour), key, &key.PublicKey, host)
	b.KeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	return b
}

func selfSignedAt(t testing.TB, serial int64, from, to time.Time, host string) store.CertBundle {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signWith(t, serial, from, to, key, &key.PublicKey, host)
}

func signWith(t testing.TB, serial int64, from, to time.Time, key any, pub any, host string) store.CertBundle {
	t.Helper()
	b := selfSigned(t, serial, host)
	c, _ := x509.ParseCertificate(pemBytes(b.CertPEM))
	c.NotBefore, c.NotAfter, c.PublicKey, c.SignatureAlgorithm = from, to, pub, 0
	der, err := x509.CreateCertificate(rand.Reader, c, c, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	b.CertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	b.KeyPEM = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return b
}

// The stage's check and the renderer's: whatever the stage accepts renders.
func TestCheckBundleCorpus(t *testing.T) {
	for name, c := range hostileBundles(t, "a.test") {
		t.Run(name, func(t *testing.T) {
			err := render.CheckBundle(c.b.FullChain(), c.b.KeyPEM)
			if c.reject == "" {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), c.reject) {
				t.Fatalf("got %v, want an error with %q", err, c.reject)
			}
			var refs []render.CertRef
			_, errs := (&render.CertFiles{Dir: t.TempDir()}).Sync(map[string]store.CertBundle{"/t/certs/data/a.test": c.b})
			for _, e := range errs {
				if !strings.Contains(e.Error(), `certificate "a.test"`) {
					t.Errorf("error does not name the certificate: %v", e)
				}
			}
			if (len(errs) == 0) != (c.reject == "") {
				t.Fatalf("Sync errors %v", errs)
			}
			if len(errs) == 0 {
				refs = []render.CertRef{{Primary: "a.test", Names: []string{"a.test"}, FullChain: c.b.FullChain(), Key: c.b.KeyPEM}}
			}
			_, err = render.Render(render.Input{Routes: []routing.Route{route("a.test", "10.0.0.2:80")}, Certs: refs, Settings: render.Settings{HTTPSAddrs: []string{":443"}}})
			if err != nil {
				t.Fatalf("accepted bundle fails the render: %v", err)
			}
		})
	}
}

// Every hostile bundle, written straight into etcd, is dropped alone: its
// vhost is served over plain HTTP, the error names the certificate, the
// other vhosts keep serving HTTPS, and later changes (a renewal, a new
// vhost) still apply.
func TestStageDropsBadBundlesAlone(t *testing.T) {
	h := startStage(t, true, nil)
	a := echoServer(t, "A")
	put := func(b store.CertBundle) {
		t.Helper()
		if _, err := store.PutJSON(context.Background(), h.etcd.Client, h.keys.CertBundle(b.Primary), b); err != nil {
			t.Fatal(err)
		}
	}
	h.putContainer("good", a, map[string]string{routing.LabelVhost: "good.test", routing.LabelHTTPS: routing.HTTPSBoth})
	put(selfSigned(t, 1, "good.test"))

	corpus := hostileBundles(t, "x.test")
	hostOf := map[string]string{}
	i := 0
	for name, c := range corpus {
		host := fmt.Sprintf("bad%d.test", i)
		i++
		hostOf[name] = host
		b := c.b
		if c.reject != "" { // same damage, this vhost's name
			b.Primary, b.Names = host, []string{host}
		} else {
			b = hostileBundles(t, host)[name].b
		}
		h.putContainer("c-"+host, a, map[string]string{routing.LabelVhost: host, routing.LabelHTTPS: routing.HTTPSBoth})
		put(b)
	}
	// Not even JSON, and a name sharing a wildcard's directory.
	if _, err := h.etcd.Client.Put(context.Background(), h.keys.CertBundle("junk.test"), "\x00{not json"); err != nil {
		t.Fatal(err)
	}
	h.putContainer("wild", a, map[string]string{routing.LabelVhost: "a.wild.test", routing.LabelHTTPS: routing.HTTPSBoth})
	put(selfSigned(t, 2, "*.wild.test"))
	put(selfSigned(t, 3, "_wildcard_.wild.test"))

	handshake := func(sni string) (int64, error) {
		conn, err := tls.Dial("tcp", h.https, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
	}
	h.eventually("every vhost served as its bundle allows", func() error {
		if s, err := handshake("good.test"); err != nil || s != 1 {
			return fmt.Errorf("good.test: serial %d, %v", s, err)
		}
		for name, c := range corpus {
			_, err := handshake(hostOf[name])
			if (err == nil) != (c.reject == "") {
				return fmt.Errorf("%s (%s): handshake error %v", name, hostOf[name], err)
			}
		}
		if _, err := handshake("a.wild.test"); err != nil {
			return fmt.Errorf("a.wild.test: %v", err)
		}
		return nil
	})
	for name, c := range corpus {
		h.want(hostOf[name], 200, "A host="+hostOf[name])
		if c.reject != "" {
			h.logHas(fmt.Sprintf(`certificate %q`, hostOf[name]), c.reject)
		}
	}
	h.logHas(`certificate "_wildcard_.wild.test": same directory as certificate "*.wild.test"`)
	h.logHas(h.keys.CertBundle("junk.test"))
	if st := h.status(); st.Error != "" {
		t.Errorf("status error %q", st.Error)
	}

	// Nothing is frozen: a renewal and a new vhost apply.
	put(selfSigned(t, 11, "good.test"))
	h.putContainer("new", a, map[string]string{routing.LabelVhost: "new.test"})
	h.want("new.test", 200, "A host=new.test")
	h.eventually("renewal served", func() error {
		if s, err := handshake("good.test"); err != nil || s != 11 {
			return fmt.Errorf("serial %d, %v", s, err)
		}
		return nil
	})
	// A bad bundle replaced by a good one serves TLS.
	fixed := hostOf["crlf"]
	put(selfSigned(t, 12, fixed))
	h.eventually(fixed+" over TLS", func() error {
		if s, err := handshake(fixed); err != nil || s != 12 {
			return fmt.Errorf("serial %d, %v", s, err)
		}
		return nil
	})
}

// logHas waits for a log line holding every part.
func (h *harness) logHas(parts ...string) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("log line with %q", parts), func() error {
		h.log.mu.Lock()
		defer h.log.mu.Unlock()
	lines:
		for _, l := range h.log.lines {
			l = strings.ReplaceAll(l, `\"`, `"`)
			for _, p := range parts {
				if !strings.Contains(l, p) {
					continue lines
				}
			}
			return nil
		}
		return fmt.Errorf("%d lines, none matches", len(h.log.lines))
	})
}
