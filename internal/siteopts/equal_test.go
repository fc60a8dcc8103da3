package siteopts

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// TestEqualCoversFields: Equal compares every field. A new field fails
// here until Equal compares it and the count below is updated.
func TestEqualCoversFields(t *testing.T) {
	for typ, n := range map[reflect.Type]int{
		reflect.TypeFor[Options]():  3,
		reflect.TypeFor[Redirect](): 5,
		reflect.TypeFor[Headers]():  3,
		reflect.TypeFor[Access]():   7,
	} {
		if typ.NumField() != n {
			t.Errorf("%v has %d fields, Equal compares %d: update Equal", typ, typ.NumField(), n)
		}
	}
	base := Options{Redirect: Redirect{To: "https://x.test/", Code: 301, KeepPath: true, From: []string{"a.test"}, Host: "h.test"},
		Headers: Headers{Security: true, Response: []Header{{"A", "1"}}, Request: []Header{{"B", "2"}}},
		Access: Access{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, AuthFile: "f", MaxBody: Size{Set: true, Bytes: 1},
			Timeout: time.Second, ConnectTimeout: 2 * time.Second, Rate: Rate{N: 1, Per: time.Second}, Burst: 3}}
	changes := []func(*Options){
		func(o *Options) { o.Redirect.To = "" }, func(o *Options) { o.Redirect.Code = 302 },
		func(o *Options) { o.Redirect.KeepPath = false }, func(o *Options) { o.Redirect.From = nil },
		func(o *Options) { o.Redirect.From = []string{} }, func(o *Options) { o.Redirect.Host = "" },
		func(o *Options) { o.Headers.Security = false }, func(o *Options) { o.Headers.Response = []Header{{"A", "2"}} },
		func(o *Options) { o.Headers.Request = nil }, func(o *Options) { o.Access.Allow = nil },
		func(o *Options) { o.Access.AuthFile = "" }, func(o *Options) { o.Access.MaxBody.Bytes = 2 },
		func(o *Options) { o.Access.Timeout = 0 }, func(o *Options) { o.Access.ConnectTimeout = 0 },
		func(o *Options) { o.Access.Rate.N = 2 }, func(o *Options) { o.Access.Burst = 0 },
	}
	for i, change := range changes {
		o := base
		o.Redirect.From = []string{"a.test"}
		change(&o)
		if o.Equal(base) != reflect.DeepEqual(o, base) || base.Equal(o) != reflect.DeepEqual(base, o) {
			t.Errorf("change %d: Equal %v, DeepEqual %v", i, o.Equal(base), reflect.DeepEqual(o, base))
		}
	}
	if !base.Equal(base) || !(Options{}).Equal(Options{}) {
		t.Error("an Options is not Equal to itself")
	}
}
