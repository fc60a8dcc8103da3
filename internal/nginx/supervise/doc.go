// Package supervise runs nginx as a process, the last part of the nginx
// stage's pipeline: the Supervisor starts it in the foreground, restarts it
// if it dies, reloads it and stops a stale master left by a previous run;
// ExternalReloader reloads an nginx Portico does not run. Both nginx paths
// (static and dynamic) use it; what nginx serves is decided upstream.
package supervise
