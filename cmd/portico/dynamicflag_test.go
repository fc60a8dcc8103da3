package main

import "testing"

func TestResolveDynamic(t *testing.T) {
	for _, c := range []struct {
		mode       string
		staticOnly bool
		lua        bool
		want       bool
		err        bool
	}{
		{mode: "auto", lua: true, want: true},
		{mode: "", lua: true, want: true},
		{mode: "auto", lua: false, want: false},
		{mode: "auto", staticOnly: true, lua: true, want: false},
		{mode: "on", lua: false, want: true}, // nginx.New then says the module is missing
		{mode: "on", staticOnly: true, want: true},
		{mode: "off", lua: true, want: false},
		{mode: "yes", err: true},
	} {
		got, err := resolveDynamic(c.mode, c.staticOnly, func() bool { return c.lua })
		if got != c.want || (err != nil) != c.err {
			t.Errorf("resolveDynamic(%q, static only %v, lua %v) = %v, %v; want %v (error %v)", c.mode, c.staticOnly, c.lua, got, err, c.want, c.err)
		}
	}
}
