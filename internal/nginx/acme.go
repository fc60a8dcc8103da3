package nginx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/portico/portico/internal/atomicfile"
	"github.com/portico/portico/internal/http01"
	"github.com/portico/portico/internal/nginx/dynamic"
	"github.com/portico/portico/internal/store"
)

// acmeSync serves the pending ACME http-01 challenges (docs/acme.md): the
// records under Keys.HTTP01Tokens() whose domain is a name the certs stage
// wants certified by ACME. The dynamic path gets them pushed (no reload);
// the static path reads them from files under dir. Once served, the stage
// acknowledges them under Keys.HTTP01ServedBy(instance), leased to its
// session, so that the certs stage asks the CA to validate only when every
// live proxy answers.
type acmeSync struct {
	dir     string            // static path: <dir>/<domain>/<token>
	control *dynamic.Control  // dynamic path, else nil
	served  []string          // tokens served now
	domains map[string]string // token -> domain of the files written
	boot    string            // dynamic: the nginx the last push went to
	acked   []string
	ackedOK bool
	session *concurrency.Session
	logged  map[string]bool
}

// ackTTL is the lease of an acknowledgement: a stage that died stops
// being waited for after it.
const ackTTL = 10

// owned lists the names the certs stage wants certified by ACME (the
// published wanted list), the only names a challenge is answered for.
func owned(mw *store.Mirror, keys store.Keys) (map[string]bool, bool) {
	entries, _, synced := mw.Snapshot()
	out := map[string]bool{}
	e, ok := entries[keys.CertsWanted()]
	if !ok {
		return out, synced
	}
	var wanted []store.WantedCert
	if err := store.Decode(keys.CertsWanted(), e.Value, &wanted); err != nil {
		return out, synced
	}
	for _, w := range wanted {
		if w.Issuer != store.IssuerACME {
			continue
		}
		for _, n := range w.Names {
			out[n] = true
		}
	}
	return out, synced
}

// syncACME makes nginx serve exactly the selected challenges and
// acknowledges them. It returns whether to try again (nginx not up, a
// failed write).
func (s *Stage) syncACME(ctx context.Context, mt, mw *store.Mirror) bool {
	a := s.acme
	entries, _, tsynced := mt.Snapshot()
	names, wsynced := owned(mw, s.cfg.Keys)
	if !tsynced || !wsynced {
		return false
	}
	stored := make([]http01.Stored, 0, len(entries))
	for k, e := range entries {
		stored = append(stored, http01.Stored{Token: store.Last(k), Value: e.Value})
	}
	recs, problems := http01.Select(stored, names)
	now := map[string]bool{}
	for _, p := range problems {
		msg := p.Error()
		now[msg] = true
		if !a.logged[msg] {
			s.log.Warn("acme http-01 challenge not served", "err", msg)
		}
	}
	a.logged = now
	tokens := http01.Tokens(recs)

	if a.control != nil {
		boot, _, err := a.control.State(ctx)
		if err != nil {
			s.log.Debug("acme http-01: nginx control not reachable yet", "err", err)
			return true
		}
		if boot != a.boot || !slices.Equal(tokens, a.served) {
			if err := a.control.PutACME(ctx, dynamic.ACMEBody(recs)); err != nil {
				s.log.Error("acme http-01: push to nginx", "err", err)
				return true
			}
			a.boot, a.served = boot, tokens
		}
	} else if !slices.Equal(tokens, a.served) {
		if err := a.writeFiles(recs); err != nil {
			s.log.Error("acme http-01: challenge files", "dir", a.dir, "err", err)
			return true
		}
		a.served = tokens
	}
	if err := s.ackACME(ctx, tokens); err != nil {
		s.log.Warn("acme http-01: acknowledgement not written", "err", err)
		return true
	}
	return false
}

// writeFiles makes <dir>/<domain>/<token> hold each record's key
// authorization (written atomically, readable by nginx's workers: a key
// authorization is public) and removes every other file.
func (a *acmeSync) writeFiles(recs []http01.Record) error {
	if err := os.MkdirAll(a.dir, 0o755); err != nil {
		return err
	}
	keep := map[string]string{}
	for _, r := range recs {
		d := filepath.Join(a.dir, r.Domain)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		p := filepath.Join(d, r.Token)
		if old, err := os.ReadFile(p); err != nil || !bytes.Equal(old, []byte(r.KeyAuth)) {
			if err := atomicfile.Write(p, []byte(r.KeyAuth), 0o644); err != nil {
				return err
			}
		}
		keep[r.Token] = r.Domain
	}
	dirs, err := os.ReadDir(a.dir)
	if err != nil {
		return err
	}
	for _, d := range dirs {
		files, _ := os.ReadDir(filepath.Join(a.dir, d.Name()))
		left := 0
		for _, f := range files {
			if keep[f.Name()] == d.Name() {
				left++
				continue
			}
			if err := os.RemoveAll(filepath.Join(a.dir, d.Name(), f.Name())); err != nil {
				return err
			}
		}
		if left == 0 {
			os.Remove(filepath.Join(a.dir, d.Name()))
		}
	}
	a.domains = keep
	return nil
}

// ackACME writes the stage's acknowledgement when it changed, leased to a
// session of the stage (its key vanishes ackTTL seconds after the stage
// dies). A client that is not an etcd client writes it unleased.
func (s *Stage) ackACME(ctx context.Context, tokens []string) error {
	a := s.acme
	var opts []clientv3.OpOption
	if cli, ok := s.cli.(*clientv3.Client); ok {
		if a.session != nil {
			select {
			case <-a.session.Done():
				a.session, a.ackedOK = nil, false
			default:
			}
		}
		if a.session == nil {
			sess, err := concurrency.NewSession(cli, concurrency.WithTTL(ackTTL), concurrency.WithContext(context.WithoutCancel(ctx)))
			if err != nil {
				return fmt.Errorf("etcd session: %w", err)
			}
			a.session, a.ackedOK = sess, false
		}
		opts = append(opts, clientv3.WithLease(a.session.Lease()))
	}
	if a.ackedOK && slices.Equal(tokens, a.acked) {
		return nil
	}
	b, err := json.Marshal(http01.Served{Instance: s.cfg.Instance, Tokens: tokens})
	if err != nil {
		return err
	}
	key := s.cfg.Keys.HTTP01ServedBy(s.cfg.Instance)
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := s.cli.Txn(wctx).Then(clientv3.OpPut(key, string(b), opts...)).Commit(); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	a.acked, a.ackedOK = tokens, true
	return nil
}

// closeACME revokes the acknowledgement's session, for a bounded time.
func (s *Stage) closeACME() {
	if s.acme == nil || s.acme.session == nil {
		return
	}
	sess := s.acme.session
	sess.Orphan()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if cli, ok := s.cli.(*clientv3.Client); ok {
		cli.Revoke(ctx, sess.Lease())
	}
}
