package certs

import (
	"context"

	"github.com/portico/portico/internal/store"
)

// LocalRoot is what the built-in local CA (localca.CA) offers besides
// Obtain: it replaces a root that lacks the configured name constraints,
// and tells which stored leaves its current root signed.
type LocalRoot interface {
	Prepare(ctx context.Context) error
	Signed(ctx context.Context, b store.CertBundle) (bool, error)
}

// prepareLocal loads the local CA's root at start, so that a root without
// name constraints is replaced at once, not at the next local order.
func (s *Stage) prepareLocal(ctx context.Context) error {
	lr, ok := s.local.(LocalRoot)
	if !ok {
		return nil
	}
	if err := lr.Prepare(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("local CA not ready; retried at the next local order", "err", err)
		return err
	}
	return nil
}

// superseded reports whether b is a local-CA leaf that the current root did
// not sign (the root was replaced): such a leaf is re-issued at once.
func (s *Stage) superseded(ctx context.Context, b *store.CertBundle) bool {
	if b == nil || b.Issuer != store.IssuerLocal {
		return false
	}
	lr, ok := s.local.(LocalRoot)
	if !ok {
		return false
	}
	signed, err := lr.Signed(ctx, *b)
	if err != nil {
		s.log.Error("checking a local certificate against the local CA's root", "cert", b.Primary, "err", err)
		return false
	}
	return !signed
}
