package hosts_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/portico/portico/internal/hosts"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
	"github.com/portico/portico/internal/testenv/porticotest"
)

var keys = store.NewKeys("/portico")

// runBeat runs a heartbeat for host until the returned stop.
func runBeat(t *testing.T, cli hosts.Client, host string, ttl time.Duration) (stop func()) {
	t.Helper()
	hb, err := hosts.NewHeartbeat(hosts.HeartbeatConfig{Host: host, AdvertiseAddr: "127.0.0.1", Keys: keys, TTL: ttl},
		cli, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hb.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("heartbeat: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func judge(t *testing.T, cli *clientv3.Client, expiry time.Duration) hosts.Judgement {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, keys.Hosts(), clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	entries := map[string]store.Entry{}
	for _, kv := range resp.Kvs {
		entries[string(kv.Key)] = store.Entry{Value: kv.Value, ModRevision: kv.ModRevision}
	}
	return hosts.Judge(entries, keys, time.Now(), expiry)
}

func poll(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		<-time.After(20 * time.Millisecond) // a poll interval
	}
}

func wantState(t *testing.T, cli *clientv3.Client, host string, st hosts.State, expiry time.Duration) func() error {
	return func() error {
		if got := judge(t, cli, expiry).Hosts[host].State; got != st {
			return fmt.Errorf("%s is %q, want %q", host, got, st)
		}
		return nil
	}
}

// TestHeartbeatStaleThenBack: with a real embedded etcd, a heartbeat makes
// its host live; once it stops (no revoke, as when a host dies) the host
// turns stale a TTL later and its last-seen key stays; after the expiry it
// is expired; a heartbeat that starts again makes it live at once.
func TestHeartbeatStaleThenBack(t *testing.T) {
	e := storetest.Start(t)
	const ttl = 2 * time.Second
	stop := runBeat(t, e.Client, "h1", ttl)
	poll(t, 5*time.Second, "h1 live", wantState(t, e.Client, "h1", hosts.Live, time.Hour))
	stopped := time.Now()
	stop()
	// Live until the lease's TTL has passed: the heartbeat was not revoked.
	if got := judge(t, e.Client, time.Hour).Hosts["h1"].State; got != hosts.Live {
		t.Fatalf("right after the stop: %s, want still live", got)
	}
	poll(t, ttl+5*time.Second, "h1 stale", wantState(t, e.Client, "h1", hosts.Stale, time.Hour))
	if took := time.Since(stopped); took < ttl-100*time.Millisecond {
		t.Errorf("stale %s after the stop, before the TTL %s", took, ttl)
	}
	t.Logf("stale %s after the heartbeat stopped (TTL %s)", time.Since(stopped).Round(time.Millisecond), ttl)
	// With an expiry of a second the last-seen time is already past it.
	poll(t, 5*time.Second, "h1 expired", wantState(t, e.Client, "h1", hosts.Expired, time.Second))
	runBeat(t, e.Client, "h1", ttl)
	poll(t, 5*time.Second, "h1 live again", wantState(t, e.Client, "h1", hosts.Live, time.Second))
}

// TestHeartbeatSurvivesLeaseLoss: when the lease is revoked under it (as
// when etcd was unreachable past the TTL), the heartbeat grants a new one
// and the host is live again.
func TestHeartbeatSurvivesLeaseLoss(t *testing.T) {
	e := storetest.Start(t)
	runBeat(t, e.Client, "h2", 2*time.Second)
	poll(t, 5*time.Second, "h2 live", wantState(t, e.Client, "h2", hosts.Live, time.Hour))
	resp, err := e.Client.Get(context.Background(), keys.HostAlive("h2"))
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatal(resp, err)
	}
	if _, err := e.Client.Revoke(context.Background(), clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "a new lease", func() error {
		r, err := e.Client.Get(context.Background(), keys.HostAlive("h2"))
		if err != nil {
			return err
		}
		if len(r.Kvs) != 1 || r.Kvs[0].Lease == resp.Kvs[0].Lease {
			return errors.New("no heartbeat on a new lease yet")
		}
		return nil
	})
}

// member is one member of a test cluster.
type member struct {
	name   string
	client url.URL
	etcd   *embed.Etcd
	once   sync.Once
}

// close stops the member (once; the test's cleanup calls it again).
func (m *member) close() { m.once.Do(m.etcd.Close) }

// startCluster starts n embedded etcd members that form one cluster on
// loopback (clients and peers on free ports), and waits until each serves.
func startCluster(t *testing.T, n int) []*member {
	t.Helper()
	ms := make([]*member, n)
	peers := make([]url.URL, n)
	var initial []string
	for i := range ms {
		ms[i] = &member{name: fmt.Sprintf("m%d", i)}
		ms[i].client = url.URL{Scheme: "http", Host: porticotest.Addr(porticotest.FreePort(t))}
		peers[i] = url.URL{Scheme: "http", Host: porticotest.Addr(porticotest.FreePort(t))}
		initial = append(initial, ms[i].name+"="+peers[i].String())
	}
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, m := range ms {
		cfg := embed.NewConfig()
		cfg.Name = m.name
		cfg.Dir = filepath.Join(dir, m.name)
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{m.client}, []url.URL{m.client}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peers[i]}, []url.URL{peers[i]}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "hosts-test"
		cfg.LogLevel = "fatal"
		cfg.EnableGRPCGateway = false
		// etcd's defaults: 100 ms heartbeat, 1 s election timeout.
		wg.Go(func() {
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				errs[i] = err
				return
			}
			m.etcd = e
			select {
			case <-e.Server.ReadyNotify():
			case <-time.After(30 * time.Second):
				errs[i] = fmt.Errorf("member %s not ready", m.name)
			}
		})
	}
	wg.Wait()
	for _, m := range ms {
		if m.etcd != nil {
			t.Cleanup(m.close)
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return ms
}

// TestHeartbeatRidesLeaderChange: on a real three-member cluster, the
// leader is stopped (a real election), then the new leader hands over to
// the last member (a transfer); a
// heartbeat whose client knows every member never loses its key: a
// watcher sees no delete of it, the lease is the same one throughout, the
// host is never stale, and its remaining TTL never falls under a third.
// It logs how long each change took and the lowest remaining TTL seen.
func TestHeartbeatRidesLeaderChange(t *testing.T) {
	ms := startCluster(t, 3)
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.client.String())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	const ttl = hosts.DefaultTTL
	runBeat(t, cli, "h3", ttl)
	poll(t, 10*time.Second, "h3 live", wantState(t, cli, "h3", hosts.Live, time.Hour))

	// Watch the key from a second client: any delete is a lost heartbeat.
	wcli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wcli.Close() })
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	var deletes sync.Map
	wch := wcli.Watch(wctx, keys.HostAlive("h3"))
	go func() {
		for r := range wch {
			for _, ev := range r.Events {
				if ev.Type == clientv3.EventTypeDelete {
					deletes.Store(ev.Kv.ModRevision, true)
				}
			}
		}
	}()
	// The lease's remaining TTL, sampled: it must never run low.
	lease := func() clientv3.LeaseID {
		r, err := cli.Get(context.Background(), keys.HostAlive("h3"))
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("heartbeat key: %v %v", r, err)
		}
		return clientv3.LeaseID(r.Kvs[0].Lease)
	}
	id := lease()
	minTTL := ttl
	sample := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if r, err := cli.TimeToLive(ctx, id); err == nil && r.TTL >= 0 {
			minTTL = min(minTTL, time.Duration(r.TTL)*time.Second)
		}
	}

	leaderOf := func(ms []*member) *member {
		for _, m := range ms {
			if m.etcd.Server.Leader() == m.etcd.Server.MemberID() {
				return m
			}
		}
		return nil
	}
	// ride keeps checking, for a TTL after a leader change, that the host
	// stays live, sampling the lease's remaining TTL.
	ride := func(what string) {
		until := time.Now().Add(ttl)
		for time.Now().Before(until) {
			sample()
			if err := wantState(t, cli, "h3", hosts.Live, time.Hour)(); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			<-time.After(200 * time.Millisecond) // a sampling interval
		}
	}

	// Round 1: stop the leader; the two others elect a new one.
	old := leaderOf(ms)
	if old == nil {
		t.Fatal("no leader")
	}
	start := time.Now()
	old.close()
	var rest []*member
	for _, m := range ms {
		if m != old {
			rest = append(rest, m)
		}
	}
	poll(t, 20*time.Second, "a new leader", func() error {
		if l := leaderOf(rest); l != nil {
			return nil
		}
		return errors.New("no leader yet")
	})
	t.Logf("leader %s stopped: new leader after %s (election)", old.name, time.Since(start).Round(time.Millisecond))
	ride("after the election")

	// Round 2: the leader hands over to the other member.
	from := leaderOf(rest)
	to := rest[0]
	if to == from {
		to = rest[1]
	}
	start = time.Now()
	mctx, mcancel := context.WithTimeout(context.Background(), 10*time.Second)
	lcli, err := clientv3.New(clientv3.Config{Endpoints: []string{from.client.String()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lcli.MoveLeader(mctx, uint64(to.etcd.Server.MemberID()))
	mcancel()
	lcli.Close()
	if err != nil {
		t.Fatalf("move leader: %v", err)
	}
	poll(t, 20*time.Second, "the transfer", func() error {
		if leaderOf(rest) == to {
			return nil
		}
		return errors.New("not yet")
	})
	t.Logf("leader moved from %s to %s in %s (transfer)", from.name, to.name, time.Since(start).Round(time.Millisecond))
	ride("after the transfer")
	t.Logf("lowest remaining lease TTL seen: %s of %s (keepalives every TTL/3)", minTTL, ttl)

	n := 0
	deletes.Range(func(any, any) bool { n++; return true })
	if n > 0 {
		t.Errorf("the heartbeat key was deleted %d times across the leader change", n)
	}
	if lease() != id {
		t.Errorf("the heartbeat was granted a new lease across the leader change")
	}
	if minTTL < ttl/3 {
		t.Errorf("remaining lease TTL fell to %s of %s", minTTL, ttl)
	}
}
