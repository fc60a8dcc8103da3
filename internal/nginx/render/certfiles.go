package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/portico/portico/internal/atomicfile"
	"github.com/portico/portico/internal/store"
)

// bundleContents returns each file's content, checking first that the
// bundle's name is a host name and that its chain and key belong together,
// so nginx never gets a pair it would refuse.
func bundleContents(b store.CertBundle) (map[string][]byte, string, error) {
	if !ValidHost(b.Primary) {
		return nil, "", fmt.Errorf("certificate %q: not a valid host name", b.Primary)
	}
	if err := CheckBundle(b.FullChain(), b.KeyPEM); err != nil {
		return nil, "", fmt.Errorf("certificate %q: %w", b.Primary, err)
	}
	files := map[string][]byte{
		"cert.pem":      []byte(b.CertPEM),
		"chain.pem":     []byte(b.ChainPEM),
		"fullchain.pem": []byte(b.FullChain()),
		"privkey.pem":   []byte(b.KeyPEM),
	}
	h := sha256.New()
	h.Write(files["fullchain.pem"])
	h.Write([]byte{0})
	h.Write(files["privkey.pem"])
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// writeBundle writes b under dir/<primary>/ (a wildcard's "*" written as
// "_wildcard_"), only the files whose content changed, each atomically;
// privkey.pem is 0600.
func writeBundle(dir string, b store.CertBundle) (CertRef, error) {
	files, fp, err := bundleContents(b)
	if err != nil {
		return CertRef{}, err
	}
	d := filepath.Join(dir, dirName(b.Primary))
	if err := os.MkdirAll(d, 0o700); err != nil {
		return CertRef{}, fmt.Errorf("certificate %q: %w", b.Primary, err)
	}
	// privkey first, fullchain last: it is what a restarting nginx pairs.
	for _, name := range []string{"privkey.pem", "cert.pem", "chain.pem", "fullchain.pem"} {
		p := filepath.Join(d, name)
		if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, files[name]) {
			continue
		}
		mode := os.FileMode(0o644)
		if name == "privkey.pem" {
			mode = 0o600
		}
		if err := atomicfile.Write(p, files[name], mode); err != nil {
			return CertRef{}, fmt.Errorf("certificate %q: %w", b.Primary, err)
		}
	}
	return CertRef{Primary: b.Primary, Names: slices.Clone(b.Names), Fingerprint: fp, Local: b.Issuer == store.IssuerLocal,
		FullChain: string(files["fullchain.pem"]), Key: string(files["privkey.pem"])}, nil
}

// CertFiles keeps the certificate dir in step with the stored bundles.
type CertFiles struct {
	Dir string
	// written maps a primary to the fingerprint on disk, so unchanged
	// bundles cost no I/O.
	written map[string]CertRef
}

// Sync writes every bundle that changed and returns the usable ones sorted
// by primary, plus one error per rejected bundle (naming its key). It never
// removes anything: see Prune.
func (c *CertFiles) Sync(bundles map[string]store.CertBundle) ([]CertRef, []error) {
	if c.written == nil {
		c.written = map[string]CertRef{}
	}
	var refs []CertRef
	var errs []error
	dirs := make(map[string]string, len(bundles)) // dir name -> primary
	for _, key := range sortedKeys(bundles) {
		b := bundles[key]
		if store.Last(key) != b.Primary {
			errs = append(errs, fmt.Errorf("key %q: bundle names certificate %q", key, b.Primary))
			continue
		}
		// "*.a.b" and "_wildcard_.a.b" share a directory and a map key.
		if other, dup := dirs[dirName(b.Primary)]; dup {
			errs = append(errs, fmt.Errorf("key %q: certificate %q: same directory as certificate %q", key, b.Primary, other))
			continue
		}
		dirs[dirName(b.Primary)] = b.Primary
		_, fp, err := bundleContents(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", key, err))
			continue
		}
		if ref, ok := c.written[b.Primary]; ok && ref.Fingerprint == fp && ref.Local == (b.Issuer == store.IssuerLocal) && slices.Equal(ref.Names, b.Names) {
			refs = append(refs, ref)
			continue
		}
		ref, err := writeBundle(c.Dir, b)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", key, err))
			continue
		}
		c.written[b.Primary] = ref
		refs = append(refs, ref)
	}
	return refs, errs
}

// Prune removes the directories of certificates not in keep. Call it only
// after a config without them is applied: the running one may still use them.
func (c *CertFiles) Prune(keep []CertRef) error {
	want := map[string]bool{}
	for _, r := range keep {
		want[dirName(r.Primary)] = true
	}
	entries, err := os.ReadDir(c.Dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("certificate dir %s: %w", c.Dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() || want[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(c.Dir, e.Name())); err != nil {
			return fmt.Errorf("certificate dir %s: %w", e.Name(), err)
		}
		for p, r := range c.written {
			if dirName(r.Primary) == e.Name() {
				delete(c.written, p)
			}
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
