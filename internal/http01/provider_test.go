package http01_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/portico/portico/internal/http01"
	"github.com/portico/portico/internal/store"
	"github.com/portico/portico/internal/store/storetest"
)

const (
	tok   = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	thumb = "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
)

func get(t *testing.T, cli *clientv3.Client, key string) *clientv3.GetResponse {
	t.Helper()
	resp, err := cli.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestProviderStoresLeasedAndRemoves: Present stores a leased record,
// CleanUp deletes it, and Guard deletes what an order left (here: no
// CleanUp at all, as when the order is cancelled).
func TestProviderStoresLeasedAndRemoves(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/p")
	p := http01.NewProvider(e.Client, http01.ProviderConfig{Keys: keys, TTL: time.Minute}, nil)
	ctx := context.Background()

	if err := p.Present(ctx, "WWW.Example.com", tok, tok+"."+thumb); err != nil {
		t.Fatal(err)
	}
	resp := get(t, e.Client, keys.HTTP01Token(tok))
	if len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("stored %v", resp.Kvs)
	}
	r, err := http01.Decode(tok, resp.Kvs[0].Value)
	if err != nil || r.Domain != "www.example.com" {
		t.Fatalf("%+v %v", r, err)
	}
	ttl, err := e.Client.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil || ttl.TTL <= 0 || ttl.TTL > 60 {
		t.Fatalf("lease ttl %v %v", ttl, err)
	}
	if err := p.CleanUp(ctx, "www.example.com", tok, ""); err != nil {
		t.Fatal(err)
	}
	if n := len(get(t, e.Client, keys.HTTP01Token(tok)).Kvs); n != 0 {
		t.Fatal("token left after CleanUp")
	}

	octx, cancel := context.WithCancel(ctx)
	gctx, done := p.Guard(octx)
	if err := p.Present(gctx, "www.example.com", tok, tok+"."+thumb); err != nil {
		t.Fatal(err)
	}
	cancel() // the order is cancelled; lego's CleanUp would fail on it
	done()
	if n := len(get(t, e.Client, keys.HTTP01Token(tok)).Kvs); n != 0 {
		t.Fatal("token left after the order's guard")
	}
}

func TestProviderRefusesHostileInput(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/p")
	p := http01.NewProvider(e.Client, http01.ProviderConfig{Keys: keys}, nil)
	for _, c := range [][3]string{
		{"a.example", "../../x" + tok, tok + "." + thumb},
		{"a.example", tok, "<html>"},
		{"*.a.example", tok, tok + "." + thumb},
	} {
		if err := p.Present(context.Background(), c[0], c[1], c[2]); err == nil {
			t.Errorf("%q accepted", c)
		}
	}
	resp, _ := e.Client.Get(context.Background(), keys.HTTP01Tokens(), clientv3.WithPrefix())
	if len(resp.Kvs) != 0 {
		t.Fatalf("stored %v", resp.Kvs)
	}
}

// TestPresentWaitsForEveryProxy: Present returns once every stored
// acknowledgement lists the token, not before.
func TestPresentWaitsForEveryProxy(t *testing.T) {
	e := storetest.Start(t)
	keys := store.NewKeys("/p")
	p := http01.NewProvider(e.Client, http01.ProviderConfig{Keys: keys, ServedWait: 20 * time.Second}, nil)
	ctx := context.Background()
	ack := func(instance string, tokens ...string) {
		b, _ := json.Marshal(http01.Served{Instance: instance, Tokens: tokens})
		if _, err := e.Client.Put(ctx, keys.HTTP01ServedBy(instance), string(b)); err != nil {
			t.Error(err)
		}
	}
	ack("a")
	ack("b")
	done := make(chan time.Time, 1)
	go func() {
		if err := p.Present(ctx, "a.example", tok, tok+"."+thumb); err != nil {
			t.Error(err)
		}
		done <- time.Now()
	}()
	// Proxy a serves it once it appears; b later.
	deadline := time.Now().Add(10 * time.Second)
	for len(get(t, e.Client, keys.HTTP01Token(tok)).Kvs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("token never stored")
		}
		select {
		case <-done:
			t.Fatal("Present returned before any proxy served the token")
		case <-time.After(5 * time.Millisecond):
		}
	}
	ack("a", tok)
	select {
	case <-done:
		t.Fatal("Present returned while proxy b did not serve the token")
	case <-time.After(200 * time.Millisecond):
	}
	ackedAt := time.Now()
	ack("b", tok)
	select {
	case at := <-done:
		if at.Before(ackedAt) {
			t.Fatal("returned before the last acknowledgement")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Present did not return after every proxy served the token")
	}
}
