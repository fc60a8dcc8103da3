package explain

import (
	"strings"
	"testing"
	"time"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// TestWhy is one case per reason a name is, or is not, served.
func TestWhy(t *testing.T) {
	vhost := func(v string, more ...string) map[string]string {
		m := map[string]string{routing.LabelVhost: v}
		for i := 0; i+1 < len(more); i += 2 {
			m[more[i]] = more[i+1]
		}
		return m
	}
	allowOrg, err := routing.ParseAllowList([]string{"example.org"})
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		served   bool
		why      []string // substrings, each in some Why line
		summary  string
		outcomes map[string]string // container -> outcome
		route    string
		wildcard bool
		https    bool
		redirect bool
		cert     string // substring of Certificate.Reason
		nginx    map[string]string
		block    string // substring of the server block
	}
	for _, tc := range []struct {
		name  string
		host  string
		opts  routing.Options
		setup func(w *world)
		want  want
	}{{
		name: "served, local CA: HTTPS and HTTP, no redirect",
		host: "Web.Test",
		setup: func(w *world) {
			w.container("c1", "web", vhost("web.test", routing.LabelPort, "8080"))
			w.bundle(store.IssuerLocal, "web.test")
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, summary: "web.test is served over HTTP and HTTPS, applied by n1", outcomes: map[string]string{"web": ClaimAccepted},
			route: "web.test", https: true, cert: "a local-CA certificate, which browsers do not trust", nginx: map[string]string{"n1": InstanceApplied},
			block: "server 172.18.0.1:8080;"},
	}, {
		name: "served, ACME: HTTP redirects",
		host: "app.example.org",
		setup: func(w *world) {
			w.container("c1", "app", vhost("app.example.org"))
			w.bundle(store.IssuerACME, "app.example.org")
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, summary: "over HTTPS (HTTP redirects to it)", route: "app.example.org", https: true, redirect: true,
			cert: "publicly trusted, so HTTP redirects", block: "return 301 https://"},
	}, {
		name: "no claim",
		host: "nothing.test",
		setup: func(w *world) {
			w.container("c1", "web", vhost("web.test"))
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{why: []string{"no claim: no container claims nothing.test"}, summary: "nothing.test is not served: no claim", nginx: map[string]string{"n1": InstanceMissing}},
	}, {
		name: "rejected container",
		host: "bad.test",
		setup: func(w *world) {
			w.container("c1", "bad", vhost("bad.test", routing.LabelPort, "abc"))
		},
		want: want{why: []string{`rejected: container "bad": label portico.port="abc"`}, outcomes: map[string]string{"bad": ClaimRejected}},
	}, {
		name: "rejected by the reporter: names unknown",
		host: "big.test",
		setup: func(w *world) {
			w.put(keys.Container("h1", "b1g"), store.Container{ID: "b1g", Name: "big", Host: "h1", State: "running", Rejected: "record of 70000 bytes exceeds the reporter's cap"})
		},
		want: want{why: []string{"no claim", "1 record(s) could not be read"}},
	}, {
		name: "conflict: the later claimant is named, the owner serves",
		host: "a.test",
		setup: func(w *world) {
			w.container("c1", "zzz-owner", vhost("a.test"))
			w.container("c2", "aaa-intruder", vhost("a.test", routing.LabelHTTPS, "off"))
			w.bundle(store.IssuerLocal, "a.test")
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, why: []string{`conflict: container "aaa-intruder" on node "h1": claim on this vhost rejected: portico.https off differs from auto set by container "zzz-owner"`},
			outcomes: map[string]string{"zzz-owner": ClaimAccepted, "aaa-intruder": ClaimConflict}, route: "a.test", https: true},
	}, {
		name: "stopping: its only replica is out of rotation, the vhost still answers (503)",
		host: "web.test",
		setup: func(w *world) {
			w.container("c1", "web", vhost("web.test"), func(c *store.Container) { c.Stopping = true })
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, route: "web.test", why: []string{"no replica is live: nginx answers 503 for it"}, outcomes: map[string]string{"web": ClaimAccepted}},
	}, {
		name: "not allowed by --allowed-domains",
		host: "web.test",
		opts: routing.Options{Network: "proxy", Allowed: allowOrg},
		setup: func(w *world) {
			w.container("c1", "web", vhost("web.test"))
		},
		want: want{why: []string{`not allowed: container "web" on node "h1": --allowed-domains does not let node "h1" claim "web.test"`},
			outcomes: map[string]string{"web": ClaimNotAllowed}},
	}, {
		name: "ignored: portico.enable=false",
		host: "off.test",
		setup: func(w *world) {
			w.container("c1", "off", vhost("off.test", routing.LabelEnable, "false"))
		},
		want: want{why: []string{"ignored: container \"off\""}, outcomes: map[string]string{"off": ClaimIgnored}},
	}, {
		name: "not yet applied: no nginx stage reported",
		host: "web.test",
		setup: func(w *world) {
			w.container("c1", "web", vhost("web.test"))
		},
		want: want{route: "web.test", why: []string{"not yet applied: no nginx stage has reported", "no HTTPS: no certificate yet: the certs stage lists none"}},
	}, {
		name: "not yet applied: the instance's config lacks the route",
		host: "new.test",
		setup: func(w *world) {
			w.applied("n1", w.routes(proxy)...) // before the container came
			w.container("c1", "new", vhost("new.test"))
		},
		want: want{route: "new.test", why: []string{`not yet applied by nginx instance "n1" (not applied)`}, nginx: map[string]string{"n1": InstanceMissing}},
	}, {
		name: "not yet applied: the instance runs an older version",
		host: "web.test",
		setup: func(w *world) {
			c := w.container("c1", "web", vhost("web.test"))
			w.applied("n1", w.routes(proxy)...)
			c.Labels[routing.LabelPort] = "9090"
			w.put(keys.Container(c.Host, c.ID), c)
			w.applied("n2", w.routes(proxy)...)
		},
		want: want{served: true, summary: "applied by n2", route: "web.test", nginx: map[string]string{"n1": InstanceStale, "n2": InstanceApplied}},
	}, {
		name: "the instance's last apply left the route out",
		host: "web.test",
		setup: func(w *world) {
			w.container("c1", "web", vhost("web.test"))
			w.put(keys.NginxStatus("n1"), store.NginxStatus{Instance: "n1", Applied: "ab", Error: "nginx -t: boom", ErrorRoutes: []string{"web.test"}})
		},
		want: want{route: "web.test", why: []string{"nginx -t: boom"}, nginx: map[string]string{"n1": InstanceError}},
	}, {
		name: "no live replica",
		host: "web.test",
		setup: func(w *world) {
			w.container("c1", "web", vhost("web.test"), func(c *store.Container) { c.State = "exited"; c.Networks = nil })
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, route: "web.test", why: []string{"no replica is live: nginx answers 503"}, block: "return 503"},
	}, {
		name: "wildcard route covers the name; its certificate too",
		host: "a.example.com",
		setup: func(w *world) {
			w.container("c1", "wild", vhost("*.example.com"))
			w.bundle(store.IssuerACME, "*.example.com", "example.com")
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, summary: "a.example.com is served by the wildcard route *.example.com", route: "*.example.com", wildcard: true,
			https: true, redirect: true, outcomes: map[string]string{"wild": ClaimAccepted}},
	}, {
		name: "wildcard route two labels down: the certificate does not cover it",
		host: "a.b.example.com",
		setup: func(w *world) {
			w.container("c1", "wild", vhost("*.example.com"))
			w.bundle(store.IssuerACME, "*.example.com", "example.com")
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, route: "*.example.com", wildcard: true, https: true, redirect: true, why: []string{`certificate "*.example.com" does not cover a.b.example.com`}},
	}, {
		name: "https=off",
		host: "plain.test",
		setup: func(w *world) {
			w.container("c1", "plain", vhost("plain.test", routing.LabelHTTPS, "off"))
			w.bundle(store.IssuerLocal, "plain.test")
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, summary: "over HTTP only", route: "plain.test", cert: "portico.https=off: HTTP only"},
	}, {
		name: "bundle rejected by the nginx bundle check",
		host: "web.test",
		setup: func(w *world) {
			w.container("c1", "web", vhost("web.test"))
			b := w.bundle(store.IssuerLocal, "web.test")
			b.KeyPEM = strings.ReplaceAll(b.KeyPEM, "\n", "\r\n")
			w.put(keys.CertBundle(b.Primary), b)
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, route: "web.test", cert: "rejected by the nginx stage's bundle check", why: []string{"no HTTPS", "CRLF"}},
	}, {
		name: "certificate order failing",
		host: "web.example.org",
		setup: func(w *world) {
			w.container("c1", "web", vhost("web.example.org"))
			w.put(keys.CertsWanted(), []store.WantedCert{{Primary: "web.example.org", Names: []string{"web.example.org"}, Issuer: store.IssuerACME}})
			w.put(keys.CertState("web.example.org"), store.CertState{Primary: "web.example.org", Names: []string{"web.example.org"}, Issuer: store.IssuerACME,
				LastError: "acme: NXDOMAIN at https://user:hunter2@dns.example/", Failures: 2, RetryAt: now.Add(time.Hour)})
			w.applied("n1", w.routes(proxy)...)
		},
		want: want{served: true, route: "web.example.org", cert: `obtaining "web.example.org" failed: acme: NXDOMAIN`, why: []string{"retry at 2026-11-30 09:00 UTC"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			tc.setup(w)
			opts := tc.opts
			if opts.Network == "" {
				opts = proxy
			}
			x := w.explain(tc.host, opts)
			dump := func() string {
				var b strings.Builder
				x.WriteText(&b, now)
				return b.String()
			}
			if x.Served != tc.want.served {
				t.Errorf("served %v, want %v\n%s", x.Served, tc.want.served, dump())
			}
			if !strings.Contains(x.Summary, tc.want.summary) {
				t.Errorf("summary %q lacks %q", x.Summary, tc.want.summary)
			}
			for _, sub := range tc.want.why {
				if !strings.Contains(strings.Join(x.Why, "\n"), sub) {
					t.Errorf("why lacks %q:\n%s", sub, dump())
				}
			}
			for name, oc := range tc.want.outcomes {
				found := false
				for _, c := range x.Claims {
					if c.Container == name {
						found = true
						if c.Outcome != oc {
							t.Errorf("claim of %s: outcome %q (%s), want %q", name, c.Outcome, c.Reason, oc)
						}
					}
				}
				if !found {
					t.Errorf("no claim of %s:\n%s", name, dump())
				}
			}
			switch {
			case tc.want.route == "" && x.Route != nil:
				t.Errorf("route %+v, want none", x.Route)
			case tc.want.route != "" && (x.Route == nil || x.Route.Host != tc.want.route || x.Route.Wildcard != tc.want.wildcard):
				t.Errorf("route %+v, want %s (wildcard %v)", x.Route, tc.want.route, tc.want.wildcard)
			}
			if x.Route != nil {
				if x.Certificate == nil {
					t.Fatal("route without certificate section")
				}
				if x.Certificate.HTTPS != tc.want.https || x.Certificate.Redirect != tc.want.redirect {
					t.Errorf("https %v redirect %v, want %v %v: %s", x.Certificate.HTTPS, x.Certificate.Redirect, tc.want.https, tc.want.redirect, x.Certificate.Reason)
				}
				if !strings.Contains(x.Certificate.Reason, tc.want.cert) {
					t.Errorf("certificate reason %q lacks %q", x.Certificate.Reason, tc.want.cert)
				}
				if !strings.Contains(x.ServerBlock, "server_name "+x.Route.Host+";") || !strings.Contains(x.ServerBlock, tc.want.block) {
					t.Errorf("server block lacks server_name or %q:\n%s", tc.want.block, x.ServerBlock)
				}
			}
			for inst, st := range tc.want.nginx {
				found := false
				for _, n := range x.Nginx {
					if n.Instance == inst {
						found = true
						if n.State != st {
							t.Errorf("instance %s: %q (%s), want %q", inst, n.State, n.Detail, st)
						}
					}
				}
				if !found {
					t.Errorf("no instance %s in %+v", inst, x.Nginx)
				}
			}
			if strings.Contains(dump(), "hunter2") {
				t.Errorf("a credential reached the output:\n%s", dump())
			}
		})
	}
}

// TestNotLiveStopping: a stopping container's claim says why it is no
// upstream, not just "state running".
func TestNotLiveStopping(t *testing.T) {
	c := store.Container{ID: "c1", Name: "web", Host: "h1", State: "running", Stopping: true}
	if got := notLive(c, routing.Service{Addr: "172.18.0.1:80"}); !strings.Contains(got, "stopping") {
		t.Errorf("notLive = %q, want it to say stopping", got)
	}
}
