package acmetest

import (
	"slices"
	"testing"
)

func TestParseOrders(t *testing.T) {
	log := `Pebble 2026/12/06 07:40:01 POST /order-plz -> calling handler()
Pebble 2026/12/06 07:40:01 Added order "o1" to the db
Pebble 2026/12/06 07:40:01 There are now 1 orders in the db
Pebble 2026/12/06 07:40:01 Added order "o2" to the db
Pebble 2026/12/06 07:40:01 There are now 2 orders in the db
Pebble 2026/12/06 07:40:02 Order o2 is fully authorized. Processing finalization
Pebble 2026/12/06 07:40:02 Issued certificate serial 0a1b2c for order o2
Pebble 2026/12/06 07:40:02 Issued certificate serial ffff for order unknown
Pebble 2026/12/06 07:40:02 Added order "o1" to the db
Pebble 2026/12/06 07:40:02 Added order "o3" to the db`
	got := ParseOrders([]byte(log))
	want := []Order{{ID: "o1"}, {ID: "o2", Serial: "a1b2c"}, {ID: "o3"}}
	if !slices.Equal(got, want) {
		t.Errorf("ParseOrders = %+v, want %+v", got, want)
	}
	if got := ParseOrders(nil); len(got) != 0 {
		t.Errorf("empty log: %+v", got)
	}
}
