# syntax=docker/dockerfile:1
# Two binaries, one small image:
#   /betasync    the daemon (default entrypoint) and the operator CLI
#   /examplepod  a minimal pod that embeds the subscriber (docker-compose.yml)

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits do not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=0.1.0-dev
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/betasync ./cmd/betasync && \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/examplepod ./cmd/examplepod

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/betasync /out/examplepod /
# ./data (BETASYNC_DATA_DIR) must be writable when NATS_URL is unset and the
# embedded NATS server keeps JetStream there: work in nonroot's home.
WORKDIR /home/nonroot
USER nonroot:nonroot
EXPOSE 4000
ENTRYPOINT ["/betasync"]
