package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/certcrypto"
	"github.com/go-acme/lego/v5/certificate"
	"github.com/go-acme/lego/v5/lego"
	"github.com/go-acme/lego/v5/registration"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KV is the part of the etcd client the account storage uses.
type KV interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
	Txn(ctx context.Context) clientv3.Txn
}

// accountRecord is the ACME account as stored at Keys.ACMEAccount(id).
type accountRecord struct {
	Directory string `json:"directory"`
	Email     string `json:"email,omitempty"`
	// KeyPEM is the account's private key (PKCS#8).
	KeyPEM string `json:"key_pem"`
	// Registration is the CA's account resource; nil until registered.
	Registration *legoacme.ExtendedAccount `json:"registration,omitempty"`
}

// user is the lego view of an account.
type user struct {
	email string
	key   crypto.Signer
	reg   *legoacme.ExtendedAccount
}

func (u *user) GetEmail() string                           { return u.email }
func (u *user) GetRegistration() *legoacme.ExtendedAccount { return u.reg }
func (u *user) GetPrivateKey() crypto.Signer               { return u.key }

// client returns a lego client logged in to the account, registering the
// account first if no stage has yet. The key is created once (create-only
// transaction, the loser reads the winner's), so stages racing on an empty
// store agree on one account: ACME's newAccount is idempotent per key.
func (i *Issuer) client(ctx context.Context) (*lego.Client, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.lego != nil {
		return i.lego, nil
	}
	key := i.cfg.Keys.ACMEAccount(AccountID(i.dir, i.cfg.Email))
	rec, rev, err := i.loadOrCreateAccount(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", key, err)
	}
	signer, err := certcrypto.ParsePEMPrivateKey([]byte(rec.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("account %s: key: %w", key, err)
	}
	u := &user{email: rec.Email, key: signer, reg: rec.Registration}
	cl, err := i.newLego(u)
	if err != nil {
		return nil, err
	}
	if u.reg == nil {
		reg, err := i.register(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("account %s: register at %s: %w", key, i.dir, err)
		}
		rec.Registration, u.reg = reg, reg
		b, err := json.Marshal(rec)
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", key, err)
		}
		// Store only over the record read; another stage's registration
		// (same key, so the same account) may already be there.
		if _, err := i.kv.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
			Then(clientv3.OpPut(key, string(b))).
			Commit(); err != nil {
			return nil, fmt.Errorf("account %s: store: %w", key, err)
		}
		i.log.Info("acme account registered", "directory", i.dir, "email", rec.Email, "account", reg.Location)
	}
	i.lego, i.user, i.accountURL = cl, u, u.reg.Location
	i.solving = map[solverSet]*lego.Client{}
	return cl, nil
}

// newLego is a lego client of the account u at the Issuer's directory.
func (i *Issuer) newLego(u *user) (*lego.Client, error) {
	// Not lego.NewConfig: it reads LEGO_CA_* from the environment.
	cl, err := lego.NewClient(&lego.Config{
		CADirURL:   i.dir,
		User:       u,
		UserAgent:  i.cfg.UserAgent,
		HTTPClient: i.http,
		Certificate: lego.CertificateConfig{
			Timeout:             i.cfg.CertificateTimeout,
			OverallRequestLimit: certificate.DefaultOverallRequestLimit,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("ACME directory %s: %w", i.dir, err)
	}
	return cl, nil
}

// solvingClient returns the account's lego client with the solvers of set:
// a client's solvers are fixed once set, and concurrent orders may need
// different ones.
func (i *Issuer) solvingClient(ctx context.Context, set solverSet) (*lego.Client, error) {
	if _, err := i.client(ctx); err != nil {
		return nil, err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if cl := i.solving[set]; cl != nil {
		return cl, nil
	}
	cl, err := i.newLego(i.user)
	if err != nil {
		return nil, err
	}
	if err := i.setSolvers(cl, set); err != nil {
		return nil, err
	}
	i.solving[set] = cl
	return cl, nil
}

// loadOrCreateAccount reads the account record at key, creating it with a new
// key if absent; rev is the record's ModRevision.
func (i *Issuer) loadOrCreateAccount(ctx context.Context, key string) (rec accountRecord, rev int64, err error) {
	resp, err := i.kv.Get(ctx, key)
	if err != nil {
		return rec, 0, fmt.Errorf("read: %w", err)
	}
	if len(resp.Kvs) == 0 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return rec, 0, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return rec, 0, err
		}
		fresh := accountRecord{
			Directory: i.dir,
			Email:     i.cfg.Email,
			KeyPEM:    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		}
		b, err := json.Marshal(fresh)
		if err != nil {
			return rec, 0, err
		}
		tx, err := i.kv.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, string(b))).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return rec, 0, fmt.Errorf("create: %w", err)
		}
		if tx.Succeeded {
			return fresh, tx.Header.Revision, nil
		}
		resp = (*clientv3.GetResponse)(tx.Responses[0].GetResponseRange())
		if len(resp.Kvs) == 0 {
			return rec, 0, fmt.Errorf("create: key vanished")
		}
	}
	kv := resp.Kvs[0]
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return rec, 0, fmt.Errorf("decode: %w", err)
	}
	return rec, kv.ModRevision, nil
}

// register creates the account at the CA, with external account binding
// when configured.
func (i *Issuer) register(ctx context.Context, cl *lego.Client) (*legoacme.ExtendedAccount, error) {
	if i.cfg.EABKeyID != "" {
		return cl.Registration.RegisterWithExternalAccountBinding(ctx, registration.RegisterEABOptions{
			TermsOfServiceAgreed: true,
			Kid:                  i.cfg.EABKeyID,
			HmacEncoded:          i.cfg.EABHMAC,
		})
	}
	return cl.Registration.Register(ctx, registration.RegisterOptions{TermsOfServiceAgreed: true})
}

// accountGone reports whether err says the CA does not know the account
// (deactivated, or a test CA restarted with empty state).
func accountGone(err error) bool {
	var pd *legoacme.ProblemDetails
	return errors.As(err, &pd) && pd.Type == legoacme.AccountDoesNotExistErrorType
}

// forgetRegistration drops the stored registration at location, if still
// there, so the next client() registers the account key again.
func (i *Issuer) forgetRegistration(ctx context.Context, location string) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.lego, i.user, i.solving, i.accountURL = nil, nil, nil, ""
	key := i.cfg.Keys.ACMEAccount(AccountID(i.dir, i.cfg.Email))
	resp, err := i.kv.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("account %s: read: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	var rec accountRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &rec); err != nil {
		return fmt.Errorf("account %s: decode: %w", key, err)
	}
	if rec.Registration == nil || rec.Registration.Location != location {
		return nil // another stage got there first
	}
	rec.Registration = nil
	b, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("account %s: %w", key, err)
	}
	if _, err := i.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", resp.Kvs[0].ModRevision)).
		Then(clientv3.OpPut(key, string(b))).
		Commit(); err != nil {
		return fmt.Errorf("account %s: store: %w", key, err)
	}
	return nil
}
