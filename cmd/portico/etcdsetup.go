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

	"github.com/portico/portico/internal/store"
)

// cmdEtcdSetup creates the etcd roles and users of docs/security-etcd.md
// on a cluster, and optionally turns auth on. It is idempotent.
func cmdEtcdSetup(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	c := newCommand("etcd-setup", "Create (or correct) one etcd role and user per stage on an external etcd cluster, each allowed only what its stage does; optionally enable auth. "+
		"Connects as --etcd-user (default root). Each user's password is read from <passwords-dir>/<user name>. Safe to run again: it fixes drift and resets passwords from the files.", stderr)
	so := addStore(c.fs)
	lo := addLog(c.fs)
	hosts := newList().list(c.fs, "reporter-host", "reporter host names (their --host), comma separated: one user portico-reporter-<host> each")
	instances := newList().list(c.fs, "nginx-instance", "nginx stage instance names (their --instance), comma separated: one user portico-nginx-<instance> each")
	withCerts := c.fs.Bool("certs", true, "create the certs stage's user portico-certs")
	withReader := c.fs.Bool("reader", true, "create portico-reader, read-only on the whole prefix (for portico status)")
	base := c.fs.String("role-base", "portico", "first part of every role and user name (several installations can share a cluster with different --prefix and --role-base)")
	pwDir := c.fs.String("passwords-dir", "", "directory holding one file per user, named after the user, containing its password (required)")
	enable := c.fs.Bool("enable-auth", false, "also enable etcd auth (creating the root user with --etcd-password-file's password when missing)")
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
	if *pwDir == "" {
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
	plan := store.AuthPlan{Roles: roles, Passwords: map[string]string{}, EnableAuth: *enable, RootPassword: so.password.Value()}
	for _, r := range roles {
		pw, err := readPasswordFile(filepath.Join(*pwDir, r.Name))
		if err != nil {
			return fmt.Errorf("password of user %s: %w", r.Name, err)
		}
		plan.Passwords[r.Name] = pw
	}
	cli, err := store.Connect(so.config(so.endpoints.vals))
	if err != nil {
		return err
	}
	defer cli.Close()
	actx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	did, err := store.ApplyAuth(actx, cli, plan)
	for _, d := range did {
		fmt.Fprintln(stdout, d)
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
