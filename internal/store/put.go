package store

import (
	"context"
	"crypto/sha256"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Version is what a writer remembers of a key: the revision that last wrote
// it and the SHA-256 of its value. The zero Version means "absent".
type Version struct {
	ModRevision int64
	Sum         [sha256.Size]byte
}

// VersionOf is the Version of value as stored at modRevision.
func VersionOf(modRevision int64, value []byte) Version {
	return Version{ModRevision: modRevision, Sum: sha256.Sum256(value)}
}

// maxPutAttempts bounds the retries when other writers keep changing a key.
const maxPutAttempts = 3

// PutIfChanged writes value under key unless known, the Version the caller
// last saw of key (from a list or from its own last write; the zero Version
// when it believes key absent), says key already holds it. It returns key's
// Version afterwards and whether it wrote.
//
// Changes are compared by revision and hash, never by sending the value
// twice: when known holds value's hash nothing is sent at all; otherwise one
// transaction, If(ModRevision(key) == known) Then Put(value) Else Get(key),
// carries the value once. A stale known (another writer changed key
// meanwhile) never overwrites blindly: the Else branch returns what key holds
// now; if that already is value nothing is written, else the put is retried
// against that revision. An attempt etcd leaves unanswered (a lost leader)
// is repeated within ctx (Attempts).
func PutIfChanged(ctx context.Context, kv KV, key string, value []byte, known Version) (Version, bool, error) {
	want := sha256.Sum256(value)
	if known.ModRevision != 0 && known.Sum == want {
		return known, false, nil
	}
	for range maxPutAttempts {
		// Compared first: safe to repeat after a lost leader (Attempts).
		var resp *clientv3.TxnResponse
		err := Attempts(ctx, func(ctx context.Context) error {
			var err error
			resp, err = kv.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision(key), "=", known.ModRevision)).
				Then(clientv3.OpPut(key, string(value))).
				Else(clientv3.OpGet(key)).
				Commit()
			return err
		})
		if err != nil {
			return known, false, fmt.Errorf("put %q: %w", key, err)
		}
		if resp.Succeeded {
			return Version{ModRevision: resp.Header.Revision, Sum: want}, true, nil
		}
		known = Version{}
		if rr := resp.Responses[0].GetResponseRange(); rr != nil && len(rr.Kvs) > 0 {
			known = VersionOf(rr.Kvs[0].ModRevision, rr.Kvs[0].Value)
		}
		if known.ModRevision != 0 && known.Sum == want {
			return known, false, nil
		}
	}
	return known, false, fmt.Errorf("put %q: changed by another writer during %d attempts", key, maxPutAttempts)
}

// PutJSON encodes v and writes it with PutIfChanged, for a writer that keeps
// no Version: a change then costs two transactions when key exists, an
// unchanged value one transaction that writes nothing.
func PutJSON(ctx context.Context, kv KV, key string, v any) (bool, error) {
	b, err := Encode(v)
	if err != nil {
		return false, fmt.Errorf("put %q: %w", key, err)
	}
	_, wrote, err := PutIfChanged(ctx, kv, key, b, Version{})
	return wrote, err
}
