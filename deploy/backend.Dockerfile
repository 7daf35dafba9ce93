# syntax=docker/dockerfile:1
#
# azen-backend: the memory service, a static binary on distroless, running as
# a non-root user. Build from the repository root (docker-compose.yml does this):
#
#   docker build -f deploy/backend.Dockerfile -t azen-backend .

ARG GO_VERSION=1.26
# What `azen-backend version` prints (.git is not in the build context):
#   docker build --build-arg AZEN_VERSION=v1.2.0 --build-arg AZEN_COMMIT=$(git rev-parse --short=12 HEAD) …
ARG AZEN_VERSION=dev
ARG AZEN_COMMIT=unknown

FROM golang:${GO_VERSION}-bookworm AS build
ARG AZEN_VERSION
ARG AZEN_COMMIT
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
	--mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X github.com/azen-sh/gateway/internal/version.Version=${AZEN_VERSION} -X github.com/azen-sh/gateway/internal/version.Commit=${AZEN_COMMIT}" -o /out/azen-backend ./backend && \
	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/healthcheck ./deploy/healthcheck
# The working folder of the non-root user, where the embedded SQLite default
# (sqlite:azen.db) lives when AZEN_DATABASE_URL is not set.
RUN mkdir -p /out/azen

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/azen-backend /out/healthcheck /usr/local/bin/
COPY --from=build --chown=65532:65532 /out/azen /var/lib/azen
# Listen on every interface of the container (the default 127.0.0.1:8081
# would be unreachable from the gateway's container).
ENV AZEN_BACKEND_ADDR=0.0.0.0:8081
WORKDIR /var/lib/azen
USER 65532:65532
EXPOSE 8081
# /readyz: the process serves and its database answers.
HEALTHCHECK --interval=5s --timeout=4s --start-period=15s --retries=3 \
	CMD ["/usr/local/bin/healthcheck", "http://127.0.0.1:8081/readyz"]
# SIGTERM (Docker's default stop signal) makes the backend finish the
# requests in flight before it exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/azen-backend"]
