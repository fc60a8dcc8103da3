package store_test

import (
	"strings"
	"testing"

	"github.com/portico/portico/internal/store"
)

// TestContainerStoppingCompatible: a record without "stopping" (an older
// reporter's) decodes as not stopping, a record that is not stopping encodes
// without the field (same bytes as before it existed), and a stopping one
// round-trips.
func TestContainerStoppingCompatible(t *testing.T) {
	key := store.NewKeys("/portico").Container("h1", "c1")
	old := []byte(`{"id": "c1", "name": "web", "host": "h1", "image": "img", "state": "running"}`)
	c, err := store.DecodeContainer(key, old)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stopping || !c.Live() {
		t.Errorf("old record decoded as %+v (Live %v), want running, not stopping, live", c, c.Live())
	}
	b, err := store.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "stopping") {
		t.Errorf("record that is not stopping encodes the field:\n%s", b)
	}
	c.Stopping = true
	if b, err = store.Encode(c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"stopping": true`) {
		t.Errorf("stopping record lacks the field:\n%s", b)
	}
	back, err := store.DecodeContainer(key, b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Stopping {
		t.Errorf("stopping lost in a round trip: %+v", back)
	}
}

func TestContainerLive(t *testing.T) {
	for _, tt := range []struct {
		c    store.Container
		want bool
	}{
		{store.Container{State: "running"}, true},
		{store.Container{State: "running", Health: "healthy"}, true},
		{store.Container{State: "running", Stopping: true}, false},
		{store.Container{State: "running", Health: "healthy", Stopping: true}, false},
		{store.Container{State: "running", Health: "starting"}, false},
		{store.Container{State: "running", Health: "unhealthy"}, false},
		{store.Container{State: "paused"}, false},
		{store.Container{State: "exited"}, false},
	} {
		if got := tt.c.Live(); got != tt.want {
			t.Errorf("%+v: Live() = %v, want %v", tt.c, got, tt.want)
		}
	}
}
