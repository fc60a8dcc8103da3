package main

import (
	"flag"
	"fmt"

	"github.com/portico/portico/internal/routing"
)

// addAllowedDomains is --allowed-domains, read by every command that builds
// routes (nginx, certs, run, status).
func addAllowedDomains(fs *flag.FlagSet) *listFlag {
	return newList().list(fs, "allowed-domains", "limit the names containers may claim, comma separated: example.com (it and its subdomains), *.example.com (subdomains only), * (any); node=example.com applies to that Docker host's (--host) containers only. Once set, a node no entry covers can claim nothing (see docs/labels.md)")
}

// routingOptions turns the routing flags into routing.Options.
func routingOptions(network string, allowed *listFlag) (routing.Options, error) {
	opts := routing.Options{Network: network}
	if allowed == nil {
		return opts, nil
	}
	al, err := routing.ParseAllowList(allowed.vals)
	if err != nil {
		return routing.Options{}, fmt.Errorf("--allowed-domains: %w", err)
	}
	opts.Allowed = al
	return opts, nil
}
