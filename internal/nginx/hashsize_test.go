package nginx

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/portico/portico/internal/routing"
)

// Outputs of nginx 1.22 -t, folded by oneLine.
func TestHashSizeErrors(t *testing.T) {
	for _, c := range []struct {
		out       string
		duplicate string
		tooSmall  []string
	}{
		{`nginx: [emerg] "server_names_hash_bucket_size" directive is duplicate in /tmp/x/conf.d/portico.conf:3 | nginx: configuration file /etc/nginx/nginx.conf test failed`,
			"server_names_hash_bucket_size", nil},
		{`nginx: [emerg] "map_hash_max_size" directive is duplicate in /tmp/x/portico.conf:6`, "map_hash_max_size", nil},
		{`nginx: [emerg] "proxy_buffering" directive is duplicate in /tmp/x/portico.conf:9`, "", nil},
		{`nginx: [emerg] could not build server_names_hash, you should increase server_names_hash_bucket_size: 64`,
			"", []string{"server_names_hash_bucket_size"}},
		{`nginx: [emerg] could not build server_names_hash, you should increase either server_names_hash_max_size: 512 or server_names_hash_bucket_size: 512`,
			"", []string{"server_names_hash_max_size", "server_names_hash_bucket_size"}},
		{`nginx: [emerg] could not build map_hash, you should increase map_hash_bucket_size: 64`, "", []string{"map_hash_bucket_size"}},
		{`nginx: [emerg] unknown directive "brokn"`, "", nil},
	} {
		if got := duplicateHash(c.out); got != c.duplicate {
			t.Errorf("duplicateHash(%q) = %q, want %q", c.out, got, c.duplicate)
		}
		if got := hashTooSmall(c.out); !reflect.DeepEqual(got, c.tooSmall) {
			t.Errorf("hashTooSmall(%q) = %q, want %q", c.out, got, c.tooSmall)
		}
	}
	omit := map[string]bool{"server_names_hash_bucket_size": true}
	if h := hashHint([]string{"server_names_hash_bucket_size"}, omit, "/etc/nginx/nginx.conf", "/etc/nginx/conf.d/portico.conf"); !strings.Contains(h, `"server_names_hash_bucket_size 512;"`) ||
		!strings.Contains(h, "/etc/nginx/nginx.conf") || !strings.Contains(h, "/etc/nginx/conf.d/portico.conf") {
		t.Errorf("hint %q does not say what to set where", h)
	}
	if h := hashHint([]string{"map_hash_bucket_size"}, omit, "", "p.conf"); h != "" {
		t.Errorf("hint %q for a directive Portico sets itself", h)
	}
	if p := string(hashPreamble(omit)); strings.Contains(p, "server_names_hash_bucket_size") || !strings.Contains(p, "server_names_hash_max_size 131072;") {
		t.Errorf("preamble without server_names_hash_bucket_size:\n%s", p)
	}
}

// stockMainConf is Debian's /etc/nginx/nginx.conf (nginx 1.22) with its
// paths moved under prefix: server_names_hash_bucket_size is commented out,
// so nginx uses 64. extra goes into http {}.
func stockMainConf(prefix, include, extra string) string {
	return `user ` + currentUser() + `;
worker_processes auto;
pid ` + prefix + `/logs/nginx.pid;
error_log ` + prefix + `/logs/error.log;

events {
	worker_connections 768;
	# multi_accept on;
}

http {
	sendfile on;
	tcp_nopush on;
	types_hash_max_size 2048;
	# server_tokens off;

	# server_names_hash_bucket_size 64;
	# server_name_in_redirect off;
` + extra + `
	default_type application/octet-stream;

	ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3; # Dropping SSLv3, ref: POODLE
	ssl_prefer_server_ciphers on;

	access_log ` + prefix + `/logs/access.log;

	gzip on;

	include ` + include + `;
}
`
}

func currentUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	return strconv.Itoa(os.Geteuid()) // ignored with a warning when not root
}

// longName is a valid host name of n bytes (n > 5), of 63-byte labels
// and ".test".
func longName(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n-5; i++ {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strings.Repeat(string(rune('a'+i)), min(63, n-5-b.Len())))
	}
	return b.String() + ".test"
}

// systemNginx starts nginx daemonised with main as its config, as a
// distribution runs it, and returns the paths the stage needs.
func systemNginx(t *testing.T, mainFor func(prefix, include string) string) (confPath, mainPath, pidFile string) {
	t.Helper()
	sys, err := os.MkdirTemp("", "portico-sysnginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sys) })
	for _, d := range []string{"logs", "conf.d"} {
		if err := os.MkdirAll(filepath.Join(sys, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	confPath = filepath.Join(sys, "conf.d", "portico.conf")
	mainPath = filepath.Join(sys, "nginx.conf")
	if err := os.WriteFile(mainPath, []byte(mainFor(sys, filepath.Join(sys, "conf.d", "*.conf"))), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	start := exec.Command(nginxBin, "-p", sys, "-c", mainPath)
	start.Stdout, start.Stderr = &out, &out
	if err := start.Run(); err != nil {
		t.Fatalf("start system nginx: %v\n%s", err, out.String())
	}
	pidFile = filepath.Join(sys, "logs", "nginx.pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGQUIT)
			}
		}
	})
	return confPath, mainPath, pidFile
}

// TestStageExternalStockMainConfLongName: under a stock nginx.conf, a vhost
// of 139 bytes (and one of 253, the longest DNS name) is served in external
// mode: the generated file sizes the hashes itself. When the main config
// sets the bucket size (64, too small), the generated file leaves it out
// (no "duplicate directive"), and the status says what to set where; when
// it sets enough, the names are served.
func TestStageExternalStockMainConfLongName(t *testing.T) {
	long139, long253 := longName(139), longName(253)
	if len(long139) != 139 || len(long253) != 253 {
		t.Fatalf("name lengths %d, %d", len(long139), len(long253))
	}
	external := func(confPath, mainPath, pidFile string) func(*Config) {
		return func(c *Config) {
			c.Mode, c.Dynamic = ModeExternal, false
			c.ConfPath, c.MainConfig, c.PidFile = confPath, mainPath, pidFile
		}
	}

	t.Run("stock", func(t *testing.T) {
		confPath, mainPath, pidFile := systemNginx(t, func(p, inc string) string { return stockMainConf(p, inc, "") })
		h := startStage(t, false, external(confPath, mainPath, pidFile))
		a := echoServer(t, "A")
		h.putContainer("a1", a, map[string]string{routing.LabelVhost: long139})
		h.putContainer("a2", a, map[string]string{routing.LabelVhost: long253})
		h.want(long139, 200, "A host="+long139)
		h.want(long253, 200, "A host="+long253)
		h.want("other.test", 404, "")
		if b, _ := os.ReadFile(confPath); !bytes.Contains(b, []byte("\nserver_names_hash_bucket_size 512;")) {
			t.Errorf("%s does not size the server names hash", confPath)
		}
	})

	t.Run("main sets 64", func(t *testing.T) {
		confPath, mainPath, pidFile := systemNginx(t, func(p, inc string) string {
			return stockMainConf(p, inc, "\tserver_names_hash_bucket_size 64;\n")
		})
		h := startStage(t, false, external(confPath, mainPath, pidFile))
		a := echoServer(t, "A")
		h.putContainer("s1", a, map[string]string{routing.LabelVhost: "short.test"})
		h.want("short.test", 200, "A host=short.test")
		if b, _ := os.ReadFile(confPath); bytes.Contains(b, []byte("\nserver_names_hash_bucket_size")) ||
			!bytes.Contains(b, []byte("\nmap_hash_bucket_size 512;")) {
			t.Errorf("%s sets the bucket size the main config sets, or lacks the others:\n%s", confPath, b[:min(len(b), 400)])
		}
		h.putContainer("a1", a, map[string]string{routing.LabelVhost: long139})
		h.eventually("status names the directive to set and where", func() error {
			st := h.status()
			for _, want := range []string{"could not build server_names_hash", `"server_names_hash_bucket_size 512;"`, mainPath, confPath} {
				if !strings.Contains(st.Error, want) {
					return os.ErrNotExist
				}
			}
			return nil
		})
		h.want("short.test", 200, "A host=short.test")
	})

	t.Run("main sets 512", func(t *testing.T) {
		confPath, mainPath, pidFile := systemNginx(t, func(p, inc string) string {
			return stockMainConf(p, inc, "\tserver_names_hash_bucket_size 512;\n\tmap_hash_max_size 4096;\n")
		})
		h := startStage(t, false, external(confPath, mainPath, pidFile))
		a := echoServer(t, "A")
		h.putContainer("a1", a, map[string]string{routing.LabelVhost: long253})
		h.want(long253, 200, "A host="+long253)
	})
}
