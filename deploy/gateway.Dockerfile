# syntax=docker/dockerfile:1
#
# azen-gateway: Caddy with the Azen modules, a static binary on distroless,
# running as a non-root user with the shipped Caddyfile. Build from the
# repository root (docker-compose.yml does this):
#
#   docker build -f deploy/gateway.Dockerfile -t azen-gateway .

ARG GO_VERSION=1.26
# What `azen-gateway version` prints (.git is not in the build context):
#   docker build --build-arg AZEN_VERSION=v1.2.0 --build-arg AZEN_COMMIT=$(git rev-parse --short=12 HEAD) …
ARG AZEN_VERSION=dev
ARG AZEN_COMMIT=unknown

FROM golang:${GO_VERSION}-bookworm AS build
ARG AZEN_VERSION
ARG AZEN_COMMIT
WORKDIR /src
ENV CGO_ENABLED=0
# Dependencies first, so a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
	--mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/azen-sh/gateway/internal/version.Version=${AZEN_VERSION} -X github.com/azen-sh/gateway/internal/version.Commit=${AZEN_COMMIT}" -o /out/azen-gateway ./gateway && \
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/healthcheck ./deploy/healthcheck
# Folders the non-root user writes: certificates and ACME state (/data),
# Caddy's autosaved config (/config), an embedded SQLite default (/var/lib/azen).
RUN mkdir -p /out/data /out/config /out/azen

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/azen-gateway /out/healthcheck /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/config /config
COPY --from=build --chown=65532:65532 /out/azen /var/lib/azen
COPY Caddyfile /etc/azen/Caddyfile
ENV XDG_DATA_HOME=/data \
	XDG_CONFIG_HOME=/config \
	AZEN_SITE_ADDRESS=:8080
WORKDIR /var/lib/azen
USER 65532:65532
# 8080: the default site address; 80 and 443 (TCP, and UDP for HTTP/3) when
# AZEN_SITE_ADDRESS is a domain name with automatic HTTPS.
EXPOSE 8080 80 443 443/udp
VOLUME ["/data", "/config"]
# The admin endpoint answers as soon as the configuration is loaded, whatever
# the site address (plain :8080 or a domain on 443).
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
	CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:2019/reverse_proxy/upstreams"]
ENTRYPOINT ["/usr/local/bin/azen-gateway"]
CMD ["run", "--config", "/etc/azen/Caddyfile", "--adapter", "caddyfile"]
