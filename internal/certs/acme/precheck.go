package acme

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// txtPropagated checks that every resolver answers fqdn's TXT query with
// value, following CNAMEs as a recursive resolver does.
func txtPropagated(ctx context.Context, resolvers []string, fqdn, value string) error {
	for _, ns := range resolvers {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(fqdn), dns.TypeTXT)
		m.RecursionDesired = true
		m.SetEdns0(4096, false)
		c := &dns.Client{Timeout: 5 * time.Second}
		r, _, err := c.ExchangeContext(ctx, m, ns)
		if err == nil && r.Truncated {
			c.Net = "tcp"
			r, _, err = c.ExchangeContext(ctx, m, ns)
		}
		if err != nil {
			return fmt.Errorf("resolver %s: TXT %s: %w", ns, fqdn, err)
		}
		if r.Rcode != dns.RcodeSuccess {
			return fmt.Errorf("resolver %s: TXT %s: %s", ns, fqdn, dns.RcodeToString[r.Rcode])
		}
		if !hasTXT(r, value) {
			return fmt.Errorf("resolver %s: TXT %s: challenge value not there yet", ns, fqdn)
		}
	}
	return nil
}

// hasTXT reports whether an answer holds a TXT record with value.
func hasTXT(r *dns.Msg, value string) bool {
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok && strings.Join(txt.Txt, "") == value {
			return true
		}
	}
	return false
}
