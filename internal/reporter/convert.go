package reporter

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/portico/portico/internal/routing"
	"github.com/portico/portico/internal/store"
)

// Convert turns Docker's inspect result for one container into the record the
// reporter on host publishes. Only the labels Portico reads
// (routing.IsPorticoLabel) and the labels named in filterKeys (the reporter's
// label filter, "key" or "key=value") are copied, and only the environment
// variables in routing.AllowedEnv (and routing.IgnoredEnv and SecretEnv,
// bounded or redacted, to warn about them): any other label or variable may be large
// or hold secrets, and never leaves the host. Ports are sorted, so equal
// containers encode to equal bytes.
func Convert(host string, in container.InspectResponse, filterKeys []string) (store.Container, error) {
	if in.ID == "" {
		return store.Container{}, fmt.Errorf("container %q: inspect result has no id", in.Name)
	}
	c := store.Container{
		ID:   in.ID,
		Name: strings.TrimPrefix(in.Name, "/"),
		Host: host,
	}
	if in.State != nil {
		c.State = string(in.State.Status)
		if h := in.State.Health; h != nil && h.Status != container.NoHealthcheck {
			c.Health = string(h.Status)
		}
	}
	var exposed network.PortSet
	if in.Config != nil {
		c.Image = in.Config.Image
		c.Labels = readLabels(in.Config.Labels, filterKeys)
		c.Env = allowedEnv(in.Config.Env)
		exposed = in.Config.ExposedPorts
	}
	var bound network.PortMap
	if ns := in.NetworkSettings; ns != nil {
		bound = ns.Ports
		for name, ep := range ns.Networks {
			if ep == nil {
				continue
			}
			if c.Networks == nil {
				c.Networks = map[string]store.Network{}
			}
			c.Networks[name] = store.Network{IPv4: addr(ep.IPAddress.String(), ep.IPAddress.IsValid()), IPv6: addr(ep.GlobalIPv6Address.String(), ep.GlobalIPv6Address.IsValid())}
		}
	}
	ports, err := convertPorts(exposed, bound)
	if err != nil {
		return store.Container{}, fmt.Errorf("container %s (%s): %w", c.Name, c.ID, err)
	}
	c.Ports = ports
	return c, nil
}

// readLabels keeps the labels Portico reads and those the filters name.
func readLabels(labels map[string]string, filters []string) map[string]string {
	var out map[string]string
	for k, v := range labels {
		if !routing.IsPorticoLabel(k) && !slices.ContainsFunc(filters, func(f string) bool {
			fk, _, _ := strings.Cut(f, "=")
			return fk == k
		}) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

func addr(s string, ok bool) string {
	if !ok {
		return ""
	}
	return s
}

// allowedEnv keeps the allow-listed variables of a KEY=value list; a later
// duplicate wins, as in Docker. Of routing.IgnoredEnv it keeps the value cut
// to routing.IgnoredEnvValueBytes, of routing.SecretEnv only a marker.
func allowedEnv(env []string) map[string]string {
	var out map[string]string
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			continue
		case slices.Contains(routing.AllowedEnv, k):
		case slices.Contains(routing.IgnoredEnv, k):
			// Read only to warn about: the name and a bounded value.
			v = routing.Clip(v, routing.IgnoredEnvValueBytes)
		case slices.Contains(routing.SecretEnv, k):
			if v != "" {
				v = routing.SecretEnvMarker
			}
		default:
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// convertPorts merges exposed ports and their bindings: one entry per
// binding, or one without host part for an exposed, unpublished port.
func convertPorts(exposed network.PortSet, bound network.PortMap) ([]store.Port, error) {
	all := map[network.Port]bool{}
	for p := range exposed {
		all[p] = true
	}
	for p := range bound {
		all[p] = true
	}
	var out []store.Port
	for p := range all {
		if !p.IsValid() {
			continue
		}
		base := store.Port{Port: int(p.Num()), Proto: string(p.Proto())}
		if len(bound[p]) == 0 {
			out = append(out, base)
			continue
		}
		for _, b := range bound[p] {
			e := base
			e.HostIP = addr(b.HostIP.String(), b.HostIP.IsValid())
			if b.HostPort != "" {
				n, err := strconv.Atoi(b.HostPort)
				if err != nil || n < 0 || n > 65535 {
					return nil, fmt.Errorf("port %s: host port %q is not a port number", p, b.HostPort)
				}
				e.HostPort = n
			}
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b store.Port) int {
		return cmp.Or(cmp.Compare(a.Port, b.Port), cmp.Compare(a.Proto, b.Proto),
			cmp.Compare(a.HostIP, b.HostIP), cmp.Compare(a.HostPort, b.HostPort))
	})
	return slices.Compact(out), nil
}
