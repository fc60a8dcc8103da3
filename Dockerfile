# Portico and nginx in one image; compose.yaml runs each stage from it.
#
# The portico binary is built on the host, static, and copied in (no Go
# build stage: it would need a golang image from a registry):
#
#   CGO_ENABLED=0 go build -trimpath -buildvcs=true -o bin/portico-static ./cmd/portico
#   docker build -t portico .
#
# scripts/image does both. BASE defaults to the official Debian image; the
# tests build on a local debootstrapped one (scripts/base-image) because no
# registry is reachable there. trixie's nginx is 1.26: HTTP/2 is turned on
# with "http2 on;" (nginx >= 1.25.1).
ARG BASE=debian:trixie-slim
FROM ${BASE}
# The uid and gid of portico-nginx, the account nginx's workers run as. A
# container shares the host's uids: no host account may use this one, or its
# processes could signal the workers (docs/container.md). Check with
# `getent passwd 61080`; pick another with --build-arg.
ARG NGINX_UID=61080

# The official slim image has no nginx; the test base already holds it, with
# the Lua module of the dynamic path (docs/nginx.md), and needs no network
# here.
RUN set -eu; \
    if ! command -v nginx >/dev/null 2>&1 || [ ! -e /etc/ssl/certs/ca-certificates.crt ] \
        || [ ! -e /usr/lib/nginx/modules/ngx_http_lua_module.so ]; then \
      apt-get update; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx libnginx-mod-http-lua lua-resty-core ca-certificates; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    # Portico runs its own nginx; the packaged site and logs are unused.
    rm -f /etc/nginx/sites-enabled/default; \
    install -d -m 0700 /var/lib/portico /run/portico; \
    # The workers' own account (portico run --nginx-user's default): nothing
    # else in the image runs as it.
    groupadd --system --gid "$NGINX_UID" portico-nginx; \
    useradd --system --uid "$NGINX_UID" --gid portico-nginx --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin --comment "Portico's nginx workers" portico-nginx; \
    nginx -v

COPY bin/portico-static /usr/local/bin/portico

# Runs as root with few capabilities (compose.yaml drops the rest): nginx's
# master binds 80/443 and drops its workers to portico-nginx. See
# docs/container.md.
EXPOSE 80 443 443/udp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/portico"]
CMD ["run", "--data-dir", "/var/lib/portico"]
