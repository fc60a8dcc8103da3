package acme

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// nopKV satisfies KV for tests that do no I/O.
type nopKV struct{}

func (nopKV) Get(context.Context, string, ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	panic("unexpected Get")
}
func (nopKV) Txn(context.Context) clientv3.Txn { panic("unexpected Txn") }
