# syntax=docker/dockerfile:1

# Usergraph's production image: a static binary on distroless, run as
# nonroot. Build with `docker build -t usergraph .`; the deployment files in
# docker-compose.yml and deploy/k8s/ run it.

# The Go version go.mod names; the build never fetches another toolchain.
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local

# Modules are their own layer: a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags "-s -w" -o /out/usergraph ./cmd/usergraph \
 && mkdir -p /out/data/exports

# distroless/static has CA certificates, tzdata and a nonroot user (65532), and
# no shell or libc: the binary is static and needs nothing else (no embedded
# PostgreSQL in a container: DATABASE_URL is always set).
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/usergraph /usergraph
# EXPORT_DIR, owned by nonroot so an empty volume mounted there inherits it.
COPY --from=build --chown=65532:65532 /out/data /data

# Container defaults; see the settings table in README.md. DATABASE_URL,
# REDIS_URL and PUBLIC_URL come from the deployment.
ENV ADDR=:8080 \
    METRICS_ADDR=:9090 \
    MODE=production \
    LOG_FORMAT=json \
    DATA_DIR=/data \
    EXPORT_DIR=/data/exports

USER nonroot:nonroot
EXPOSE 8080 9090
ENTRYPOINT ["/usergraph"]
CMD ["serve"]
