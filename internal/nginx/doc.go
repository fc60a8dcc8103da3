// Package nginx is the nginx stage: it mirrors container records and
// certificates from etcd, renders one server block per vhost, validates the
// result with `nginx -t` and reloads nginx, never applying a broken config.
//
// The stage's parts: this package is the stage itself (its loop, the
// applier, the pacing, isolation of refused routes, the last good state and
// the status); render decides what nginx serves on both paths (the rendered
// config, the dynamic path's table, the certificate files and every check
// of its inputs); dynamic pushes the table into nginx's Lua module;
// supervise runs the nginx process.
package nginx
