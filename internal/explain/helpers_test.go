package explain

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

var (
	keys = store.NewKeys("/portico")
	// now is the tests' clock; the test certificates run from 2026-01-01
	// to 2036-01-01.
	now = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
)

// world is a store snapshot under construction.
type world struct {
	t       *testing.T
	entries map[string]store.Entry
	rev     int64
}

func newWorld(t *testing.T) *world {
	return &world{t: t, entries: map[string]store.Entry{}, rev: 1}
}

func (w *world) put(key string, v any) {
	w.t.Helper()
	b, err := store.Encode(v)
	if err != nil {
		w.t.Fatal(err)
	}
	w.rev++
	w.entries[key] = store.Entry{Value: b, ModRevision: w.rev, CreateRevision: w.rev}
}

func (w *world) raw(key, v string) {
	w.rev++
	w.entries[key] = store.Entry{Value: []byte(v), ModRevision: w.rev, CreateRevision: w.rev}
}

// container adds a running container on node h1 with an address on the
// "proxy" network.
func (w *world) container(id, name string, labels map[string]string, mod ...func(*store.Container)) store.Container {
	c := store.Container{ID: id, Name: name, Host: "h1", Image: "img", State: "running", Labels: labels,
		Networks: map[string]store.Network{"proxy": {IPv4: "172.18.0." + id[len(id)-1:]}}}
	for _, m := range mod {
		m(&c)
	}
	w.put(keys.Container(c.Host, c.ID), c)
	return c
}

// bundle adds a certificate bundle for names, freshly generated.
func (w *world) bundle(issuer string, names ...string) store.CertBundle {
	w.t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		w.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		w.t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		w.t.Fatal(err)
	}
	b := store.CertBundle{Primary: names[0], Names: names, Issuer: issuer, Serial: "1092",
		CertPEM:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		KeyPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})),
		NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter, ObtainedAt: tmpl.NotBefore}
	w.put(keys.CertBundle(b.Primary), b)
	return b
}

// applied records an nginx instance that applied routes as they are.
func (w *world) applied(instance string, routes ...routing.Route) {
	w.put(keys.NginxStatus(instance), store.NginxStatus{Instance: instance, Applied: "0123456789abcdef0123", Routes: len(routes), Reloads: 1,
		AppliedRoutes: render.RouteDigests(routes)})
}

// routes are the routes the snapshot builds now (for applied).
func (w *world) routes(opts routing.Options) []routing.Route {
	var cs []store.Container
	for k, e := range w.entries {
		if c, err := store.DecodeContainerEntry(k, e); err == nil {
			cs = append(cs, c)
		}
	}
	return routing.Build(cs, opts).Routes
}

func (w *world) explain(host string, opts routing.Options) Explanation {
	return Build(Input{Host: host, Entries: w.entries, Keys: keys, Routing: opts, Now: now,
		Render: render.Settings{HTTPAddrs: []string{":80"}, HTTPSAddrs: []string{":443"}, NginxVersion: "1.22.1"}})
}

var proxy = routing.Options{Network: "proxy"}
