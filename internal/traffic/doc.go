// Package traffic counts each site's requests in nginx itself and exports
// them (docs/metrics.md).
//
// nginx counts: a Lua module (portico_traffic.lua, written beside the
// dynamic path's portico.lua) adds every request in the log phase to
// per-worker counters, which a timer adds into a shared dictionary once a
// second. Portico reads a snapshot of the dictionary from nginx's control
// socket (Control), keeps its counters monotonic across nginx restarts
// (Monitor), exports them to Prometheus with the site as a label
// (Monitor is a prometheus.Collector) and samples them every few seconds
// into a 15-minute history for the operators' page (Charts).
//
// The labels are bounded by the routes: a site is a route's host, or
// Unmatched for requests no route took; a route that goes away takes its
// series with it, and nothing a client sends becomes a label.
package traffic
