package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/portico/portico/internal/passwordfile"
	"github.com/portico/portico/internal/store"
)

// cmdEtcdSetup creates the etcd roles and users of docs/security-etcd.md
// on a cluster, and optionally turns auth on. It is idempotent.
func cmdEtcdSetup(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	c := newCommand("etcd-setup", "Create (or correct) one etcd role and user per stage on an etcd cluster (or the compose stack's `portico etcd`), each allowed only what its stage does; optionally enable auth. "+
		"Connects as --etcd-user (default root; without --etcd-password(-file), root's password is read like the users', from <passwords-dir>/root or --password-file root=PATH). "+
		"Each user's password is read from <passwords-dir>/<user name>, or the path --password-file gives it; --generate-passwords creates the missing files. Safe to run again: it fixes drift and resets passwords from the files.", stderr)
	so := addStore(c.fs)
	lo := addLog(c.fs)
	hosts := newList().list(c.fs, "reporter-host", "reporter host names (their --host), comma separated: one user portico-reporter-<host> each")
	instances := newList().list(c.fs, "nginx-instance", "nginx stage instance names (their --instance), comma separated: one user portico-nginx-<instance> each")
	withCerts := c.fs.Bool("certs", true, "create the certs stage's user portico-certs")
	withReader := c.fs.Bool("reader", true, "create portico-reader, read-only on the whole prefix (for portico status)")
	base := c.fs.String("role-base", "portico", "first part of every role and user name (several installations can share a cluster with different --prefix and --role-base)")
	pwDir := c.fs.String("passwords-dir", "", "directory holding one file per user, named after the user, containing its password (required unless --password-file names every user's file)")
	pwFiles := newList().list(c.fs, "password-file", "USER=PATH, comma separated: USER's password file is PATH, not <passwords-dir>/USER (the compose stack keeps each stage's in that stage's own volume)")
	generate := c.fs.Bool("generate-passwords", false, "create every missing password file (root's too, when it is read from one) with a random 256-bit password, mode 0600 in a 0700 dir; existing files are kept as they are")
	wait := durationFlag(c.fs, "wait", time.Minute, "how long to wait for etcd to answer (the compose stack starts it just before)")
	enable := c.fs.Bool("enable-auth", false, "also enable etcd auth (creating the root user with root's password when missing)")
	if err := c.parse(args, e); err != nil {
		return err
	}
	log, err := lo.logger(stderr)
	if err != nil {
		return err
	}
	c.logWarnings(log)
	if len(so.endpoints.vals) == 0 {
		return errors.New("--etcd-endpoints is required: etcd-setup is for an external cluster (the embedded one is reachable only through its data dir)")
	}
	overrides, err := parsePasswordFiles(pwFiles.vals)
	if err != nil {
		return usageError(err)
	}
	if *pwDir == "" && len(overrides) == 0 {
		return errors.New("--passwords-dir is required")
	}
	if *so.user == "" {
		*so.user = "root"
	}
	roles, err := store.Roles(so.keys(), store.RoleSpec{Base: *base, ReporterHosts: hosts.vals, NginxInstances: instances.vals, Certs: *withCerts, Reader: *withReader})
	if err != nil {
		return err
	}
	if len(roles) == 0 {
		return errors.New("nothing to set up: give --reporter-host, --nginx-instance, --certs or --reader")
	}
	users := make([]string, 0, len(roles)+1)
	for _, r := range roles {
		users = append(users, r.Name)
	}
	// Connecting as root with no password given: root's is read like
	// every user's (and generated with them before auth is on).
	rootFromFile := *so.user == "root" && so.password.Value() == ""
	if rootFromFile {
		users = append(users, "root")
	}
	paths, err := passwordPaths(*pwDir, overrides, users)
	if err != nil {
		return usageError(err)
	}
	rootGenerated := false
	if *generate {
		for _, u := range users {
			created, err := passwordfile.Ensure(paths[u])
			if err != nil {
				return fmt.Errorf("password of user %s: %w", u, err)
			}
			if created {
				fmt.Fprintf(stdout, "generated the password of user %s in %s\n", u, paths[u])
				rootGenerated = rootGenerated || u == "root"
			}
		}
	}
	plan := store.AuthPlan{Roles: roles, Passwords: map[string]string{}, EnableAuth: *enable}
	for _, u := range users {
		pw, err := readPasswordFile(paths[u])
		if err != nil {
			return fmt.Errorf("password of user %s: %w", u, err)
		}
		if u == "root" {
			so.password.value = pw
			continue
		}
		plan.Passwords[u] = pw
	}
	if *so.user == "root" {
		plan.RootPassword = so.password.Value()
	}
	actx, cancel := context.WithTimeout(ctx, *wait+time.Minute)
	defer cancel()
	wctx, wcancel := context.WithTimeout(actx, *wait)
	defer wcancel()
	cli, err := connectWaiting(wctx, so.config(so.endpoints.vals))
	if err != nil && rootGenerated {
		return fmt.Errorf("%w (root's password file %s was just generated: if auth was already on, put back the file that held root's password)", err, paths["root"])
	}
	if err != nil {
		return err
	}
	defer cli.Close()
	did, err := store.ApplyAuth(actx, cli, plan)
	for _, d := range did {
		fmt.Fprintln(stdout, d)
	}
	if err != nil && rootGenerated {
		return fmt.Errorf("%w (root's password file %s was just generated: if auth was already on, put back the file that held root's password)", err, paths["root"])
	}
	if err != nil {
		return err
	}
	for _, r := range roles {
		fmt.Fprintln(stdout, "role", r)
	}
	return nil
}

// readPasswordFile reads a password, ignoring one trailing newline.
func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if pw == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return pw, nil
}

// parsePasswordFiles parses --password-file's USER=PATH entries. A user
// named twice, an empty user or a relative path is an error naming it.
func parsePasswordFiles(vals []string) (map[string]string, error) {
	out := make(map[string]string, len(vals))
	for _, v := range vals {
		user, path, ok := strings.Cut(v, "=")
		user, path = strings.TrimSpace(user), strings.TrimSpace(path)
		switch {
		case !ok || user == "" || path == "":
			return nil, fmt.Errorf("--password-file %q: give USER=PATH", v)
		case !filepath.IsAbs(path):
			return nil, fmt.Errorf("--password-file %q: the path must be absolute", v)
		case out[user] != "":
			return nil, fmt.Errorf("--password-file: user %s given twice", user)
		}
		out[user] = filepath.Clean(path)
	}
	return out, nil
}

// passwordPaths is where each user's password file is: the --password-file
// entry, else <dir>/<user>. An entry for a user this setup does not touch
// (a mistyped host or instance) is an error, as is a user with neither.
func passwordPaths(dir string, overrides map[string]string, users []string) (map[string]string, error) {
	out := make(map[string]string, len(users))
	for _, u := range users {
		switch {
		case overrides[u] != "":
			out[u] = overrides[u]
		case dir != "":
			out[u] = filepath.Join(dir, u)
		default:
			return nil, fmt.Errorf("user %s: no password file: give --passwords-dir or --password-file %s=PATH", u, u)
		}
	}
	for u := range overrides {
		if _, ok := out[u]; !ok {
			return nil, fmt.Errorf("--password-file names user %s, which this setup does not create (users: %s)", u, strings.Join(users, ", "))
		}
	}
	return out, nil
}

// connectWaiting connects (and, with a user, logs in) until ctx ends,
// retrying while etcd does not answer; a refused login fails at once.
func connectWaiting(ctx context.Context, cfg store.Config) (*clientv3.Client, error) {
	begin := time.Now()
	for {
		attempt := cfg
		attempt.DialTimeout = 5 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			attempt.DialTimeout = max(100*time.Millisecond, min(attempt.DialTimeout, time.Until(dl)))
		}
		cli, err := store.Connect(attempt)
		if err == nil {
			return cli, nil
		}
		if !notAnswering(err) {
			return nil, fmt.Errorf("etcd at %s: %w", strings.Join(cfg.Endpoints, ","), err)
		}
		select {
		case <-ctx.Done():
			return nil, unreachable(cfg.Endpoints, time.Since(begin), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// notAnswering says err means that no etcd answered (yet).
func notAnswering(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || grpcstatus.Code(err) == codes.DeadlineExceeded || grpcstatus.Code(err) == codes.Unavailable
}
