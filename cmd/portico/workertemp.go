package main

import (
	"fmt"
	"os"
)

// workerTempDir picks where a supervised nginx's workers buffer request and
// response bodies. Run as root, nginx's workers drop to an unprivileged user
// that cannot enter the 0700 data dir, so they get a fresh directory under
// $TMPDIR (mode 0711: nginx creates its client_body/, proxy/… inside, owned
// by the worker user), removed by cleanup. Otherwise the workers are this
// user and the default <data-dir>/nginx/temp serves ("").
func workerTempDir(no *nginxOpts, euid int) (dir string, cleanup func(), err error) {
	if no.external() || euid != 0 {
		return "", func() {}, nil
	}
	d, err := os.MkdirTemp("", "portico-nginx-temp-")
	if err != nil {
		return "", nil, fmt.Errorf("nginx worker temp dir: %w", err)
	}
	if err := os.Chmod(d, 0o711); err != nil {
		os.RemoveAll(d)
		return "", nil, fmt.Errorf("nginx worker temp dir %s: %w", d, err)
	}
	return d, func() { os.RemoveAll(d) }, nil
}
