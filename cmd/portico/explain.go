package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/portico/portico/internal/explain"
	"github.com/portico/portico/internal/nginx/render"
	"github.com/portico/portico/internal/status"
)

// cmdExplain is `portico explain <host>`: the chain from the records that
// claim a name to what each nginx instance runs, and why the name is not
// served when it is not. The decisions are internal/explain's; this reads
// the flags and the store.
func cmdExplain(ctx context.Context, args []string, e env, stdout, stderr io.Writer) error {
	c := newCommand("explain", "Explain how one host name is served, or why it is not: the containers that claim it, their settings and problems, the route, the certificate, the rendered server block and which nginx instances applied it.\n\nThe host name goes before or after the flags: portico explain <host> [flags].\nExit status: 0 when the name is served, 1 when it is not (or on an error).", stderr)
	so := addStore(c.fs)
	dataDir := addDataDir(c.fs, defaultDataDir)
	network := c.fs.String("network", "", "the proxy's Docker network, as given to the nginx stage")
	allowed := addAllowedDomains(c.fs)
	asJSON := c.fs.Bool("json", false, "print JSON instead of text")
	httpAddrs := newList(":80").list(c.fs, "http-addr", "the nginx stage's HTTP listen addresses, for the rendered server block")
	httpsAddrs := newList(":443").list(c.fs, "https-addr", "the nginx stage's HTTPS listen addresses; empty: the stage serves no TLS")
	template := c.fs.String("template", "", "the nginx stage's --template, if it has one")
	includeDir := c.fs.String("include-dir", "", "the nginx stage's --include-dir, if it has one")
	trusted := newList().list(c.fs, "trusted-proxies", "the nginx stage's --trusted-proxies")
	maxReqs := c.fs.Int("max-requests-per-client", render.DefaultMaxRequestsPerClient, "the nginx stage's --max-requests-per-client")
	binary := c.fs.String("nginx-binary", "nginx", "nginx executable whose version (nginx -v) shapes the rendered block; when it does not run, the block is rendered for an older nginx")
	// The host may come before or after the flags.
	if err := c.fs.Parse(args); err != nil {
		return err
	}
	rest := c.fs.Args()
	if len(rest) == 0 {
		c.fs.Usage()
		return errors.New("explain: which host? (portico explain <host>)")
	}
	host := rest[0]
	if err := c.parse(rest[1:], e); err != nil {
		return err
	}
	c.logWarnings(slog.New(slog.NewTextHandler(stderr, nil)))
	cli, err := connectQuick(ctx, so, *dataDir, statusProbe)
	if err != nil {
		return err
	}
	defer cli.Close()
	keys := so.keys()
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	entries, err := readPrefix(gctx, cli, keys)
	if err != nil {
		return err
	}
	// The nginx stage's routing and rendering settings, unless given here.
	stage, published, err := c.stageSettings(e, entries, keys, stderr)
	if err != nil {
		return err
	}
	ropts, err := routingOptions(*network, allowed)
	if err != nil {
		return err
	}
	settings := render.Settings{HTTPAddrs: httpAddrs.vals, HTTPSAddrs: httpsAddrs.vals, IncludeDir: *includeDir, NginxVersion: nginxVersion(*binary)}
	if settings.TrustedProxies, err = render.ParseTrustedProxies(trusted.vals); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if err := render.CheckMaxRequestsPerClient(*maxReqs); err != nil {
		return fmt.Errorf("--max-requests-per-client: %w", err)
	}
	settings.MaxRequestsPerClient = *maxReqs
	// Where the nginx stage keeps portico.auth-file's copies varies by
	// run; explain shows a stand-in path.
	settings.AuthDir = explainAuthDir
	if *template != "" {
		b, err := os.ReadFile(*template)
		if err != nil {
			return fmt.Errorf("--template: %w", err)
		}
		settings.Template = string(b)
	}
	if published {
		// The stage's nginx shapes the block, not the one here.
		given := false
		c.fs.Visit(func(f *flag.Flag) { given = given || f.Name == "nginx-binary" })
		if !given && stage.NginxVersion != "" {
			settings.NginxVersion = stage.NginxVersion
		}
		settings.HTTP3 = stage.HTTP3
		if stage.CustomTemplate && *template == "" {
			fmt.Fprintf(stderr, "note: the nginx stage %s renders with its own --template; give it here to see its block\n", status.Escape(stage.Instance))
		}
	}
	now := time.Now()
	x := explain.Build(explain.Input{Host: host, Entries: entries, Keys: keys, Routing: ropts, Render: settings, Now: now})
	if *asJSON {
		err = x.WriteJSON(stdout)
	} else {
		err = x.WriteText(stdout, now)
	}
	if err != nil {
		return err
	}
	if !x.Served {
		return fmt.Errorf("%s is not served", status.Escape(x.Host))
	}
	return nil
}

// nginxVersion is the version `binary -v` reports, or "" when it does not run.
func nginxVersion(binary string) string {
	out, err := exec.Command(binary, "-v").CombinedOutput()
	if err != nil {
		return ""
	}
	v, _ := render.VersionFromOutput(strings.TrimSpace(string(out)))
	return v
}

// explainAuthDir stands in for the nginx stage's htpasswd copies' directory
// in explained configs.
const explainAuthDir = "/portico-nginx-temp/auth"
