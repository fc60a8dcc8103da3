// Package deps pins the module's dependencies while the stages are written.
package deps

import (
	_ "github.com/go-acme/lego/v5/lego"
	_ "github.com/portico/portico/internal/certs/dnsproviders"
	_ "github.com/moby/moby/api/types/events"
	_ "github.com/moby/moby/client"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.etcd.io/etcd/client/v3/concurrency"
	_ "go.etcd.io/etcd/server/v3/embed"
	_ "golang.org/x/net/idna"
)
