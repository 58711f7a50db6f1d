# syntax=docker/dockerfile:1
# The detector image: a static binary (no cgo, no libc) on distroless
# static, running as the non-root user 65532. Distroless static carries CA
# certificates (TLS to Kafka, MSK and Confluent Cloud and to the HTTP
# sinks verifies against them) and time zone data, and nothing else: no
# shell, no package manager.
#
#   docker build -t ghcr.io/exfilguard/exfilguard:0.1.0 .    (or: make image)
#   docker run --rm -v $PWD/config.yml:/etc/exfilguard/config.yml:ro \
#     -v exfilguard-state:/var/lib/exfilguard \
#     ghcr.io/exfilguard/exfilguard:0.1.0 run --config /etc/exfilguard/config.yml
#
# The Helm chart (deploy/helm/exfilguard) runs it with a read-only root
# filesystem; the only writable path is state.dir's volume.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd ./cmd
COPY pkg ./pkg
COPY internal ./internal
# Set by BuildKit from --platform (cross-compiled: CGO is off).
ARG TARGETOS TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/detector ./cmd/detector \
 && mkdir -p /out/var/lib/exfilguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/detector /detector
# state.dir's default, owned by the user that writes it, for `docker run`
# with a volume there (the chart mounts its own).
COPY --from=build --chown=65532:65532 /out/var/lib/exfilguard /var/lib/exfilguard
USER 65532:65532
# http.listen: /metrics, /healthz, /readyz.
EXPOSE 8080
ENTRYPOINT ["/detector"]
CMD ["help"]
