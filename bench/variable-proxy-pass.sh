#!/bin/sh
# Measures why Portico does not serve vhosts from one shared server with
# `proxy_pass http://$upstream`: nginx resolves a variable proxy_pass by a
# linear search over every upstream {} name on each request. Two nginx with
# the same N upstream blocks proxy to one backend nginx; one names the last
# upstream literally, the other through a map. Needs nginx and wrk.
#
#   sh bench/variable-proxy-pass.sh [N]    (default 10000)
set -eu
n=${1:-10000}
d=$(mktemp -d)
trap 'for c in static var backend; do nginx -p "$d" -c "$d/$c.conf" -s stop 2>/dev/null || true; done; rm -rf "$d"' EXIT
mkdir -p "$d/logs" "$d/t"
common="access_log off; client_body_temp_path $d/t; proxy_temp_path $d/t; fastcgi_temp_path $d/t; uwsgi_temp_path $d/t; scgi_temp_path $d/t;"
i=0
: >"$d/ups.conf"
while [ "$i" -lt "$n" ]; do
	printf 'upstream u%08d_app%05d.example.com { server 127.0.0.1:18081; keepalive 32; }\n' "$i" "$i" >>"$d/ups.conf"
	i=$((i + 1))
done
last=$(printf 'u%08d_app%05d.example.com' $((n - 1)) $((n - 1)))
cat >"$d/backend.conf" <<CONF
pid $d/backend.pid; error_log $d/logs/backend.log; worker_processes 1;
events { worker_connections 4096; }
http { $common server { listen 127.0.0.1:18081; location / { return 200 "ok"; } } }
CONF
for mode in static var; do
	if [ "$mode" = static ]; then port=18082 pass="http://$last" map=""; else port=18083 pass='http://$up' map="map \$host \$up { default $last; }"; fi
	cat >"$d/$mode.conf" <<CONF
pid $d/$mode.pid; error_log $d/logs/$mode.log; worker_processes 1;
events { worker_connections 4096; }
http { $common include $d/ups.conf; $map
server { listen 127.0.0.1:$port; location / { proxy_pass $pass; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host; } } }
CONF
done
for c in backend static var; do nginx -p "$d" -c "$d/$c.conf"; done
for round in 1 2 3; do
	for mode in static var; do
		port=18082
		[ "$mode" = var ] && port=18083
		printf '%s upstreams=%s round %s: ' "$mode" "$n" "$round"
		wrk -t1 -c16 -d4s "http://127.0.0.1:$port/" | grep Requests/sec
	done
done
