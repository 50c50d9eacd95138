# syntax=docker/dockerfile:1

# Build stage: a static binary, so the runtime image needs no libc.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src

# Modules first: the layer is reused as long as go.mod/go.sum do not change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/o365-mail-connector ./cmd/o365-mail-connector

# Runtime stage: no shell, no package manager, uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="o365-mail-connector" \
      org.opencontainers.image.description="Camunda 8 job worker for Microsoft 365 mail via Microsoft Graph" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=build /out/o365-mail-connector /usr/local/bin/o365-mail-connector

# The Zeebe client caches gateway OAuth tokens in a file (default under $HOME).
# Pointing it at /tmp keeps the root filesystem read-only; in Kubernetes /tmp
# is an emptyDir (see the Helm chart).
ENV ZEEBE_CLIENT_CONFIG_PATH=/tmp/zeebe-token-cache/credentials \
    MANAGEMENT_ADDR=:8080

# Management server: /healthz, /readyz, /metrics.
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/o365-mail-connector"]
