// Package render decides what nginx serves, for both paths of the nginx
// stage, as pure functions of the routes, certificates and settings: the
// static path's portico.conf (Render, one server block per vhost, from
// templates/portico.conf.tmpl), the dynamic path's config and route table
// (DynamicPaths, DynamicTable), the main nginx.conf of supervised mode
// (MainConf), the certificate files both read (CertFiles, CertFor), and
// the checks everything rendered passes first (CheckRoutes, CheckCertPEM,
// ParseTrustedProxies). What portico explain shows comes from here too.
package render
