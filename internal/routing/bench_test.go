package routing

import (
	"fmt"
	"testing"

	"github.com/portico/portico/internal/store"
)

// synthetic returns n records shaped like a busy host: services of three
// replicas sharing two vhosts, a mix of label forms, some stopped, some with
// an unknown label and some invalid.
func synthetic(n int) []store.Container {
	cs := make([]store.Container, n)
	for i := range cs {
		svc := i / 3
		c := store.Container{
			ID:    fmt.Sprintf("%064x", i),
			Name:  fmt.Sprintf("svc%d-%d", svc, i%3),
			Host:  fmt.Sprintf("node%d", i%4),
			Image: "img",
			Labels: map[string]string{
				"com.docker.compose.project": "p",
				"com.docker.compose.service": fmt.Sprintf("svc%d", svc),
			},
			Networks: map[string]store.Network{"proxy": {IPv4: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255|1)}},
			Ports:    []store.Port{{Port: 8080, Proto: "tcp"}},
			State:    "running",
		}
		hosts := fmt.Sprintf("svc%d.example.com, www.svc%d.example.com", svc, svc)
		switch svc % 5 {
		case 0:
			c.Labels[LabelVhost] = hosts
			c.Labels[LabelHSTS] = "true"
		case 1:
			c.Labels[LegacyVhost] = hosts
			c.Labels[LegacyPort] = "3000"
		case 2:
			c.Env = map[string]string{EnvVirtualHost: hosts, EnvVirtualPort: "8000", EnvLetsEncryptHost: fmt.Sprintf("svc%d.example.com", svc)}
		case 3:
			c.Labels[LabelVhost] = hosts
			c.Labels["portico.prot"] = "grpc"
			c.State = "exited"
			c.Networks = map[string]store.Network{"proxy": {}}
		case 4:
			if svc%10 == 4 {
				c.Labels[LabelVhost] = hosts
				c.Labels[LabelPort] = "eighty"
			}
		}
		cs[i] = c
	}
	return cs
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		cs := synthetic(n)
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Build(cs, Options{Network: "proxy"})
			}
		})
	}
}

func TestSyntheticIsValid(t *testing.T) {
	res := Build(synthetic(300), Options{Network: "proxy"})
	if len(res.Routes) < 100 || len(res.Problems) == 0 || !hasError(res.Problems) {
		t.Fatalf("synthetic fixture degenerate: %d routes, %d problems", len(res.Routes), len(res.Problems))
	}
	if bad := unsafeFields(res); len(bad) > 0 {
		t.Fatal(bad)
	}
}
