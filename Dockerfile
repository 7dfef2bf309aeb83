# syntax=docker/dockerfile:1
# One image, four binaries in /usr/local/bin: analytics-api, analytics-processor,
# analytics-migrate, and analytics-admin (sites, keys, shared links, user
# deletion; operators run it in an api pod, whose environment holds
# DATABASE_URL: `kubectl exec deploy/<release>-api -- analytics-admin ...`).
# The Helm chart picks the binary with `command:`.
#
#   docker build -t analytics:dev .
#
# Stages: builder (toolchain + native packages; dependencies and the four
# binaries, with BuildKit cache mounts for the registry and target/ so a source
# change rebuilds only the workspace) -> runtime (debian slim, non-root, no
# toolchain). cargo-chef is not used: it would replace the vendored, patched
# sqlx-core (vendor/, see vendor/README.md) with an empty skeleton while
# cooking dependencies.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
# The same native packages CI installs: rdkafka builds librdkafka with cmake and
# links OpenSSL, SASL, zlib, zstd and curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake libcurl4-openssl-dev libsasl2-dev libssl-dev zlib1g-dev libzstd-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p api -p processor -p migration -p admin \
 && mkdir -p /out \
 && install -m 0755 target/release/analytics-api target/release/analytics-processor \
      target/release/analytics-migrate target/release/analytics-admin /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# Runtime libraries of the dynamically linked librdkafka (TLS, SASL, compression,
# curl) and CA certificates for TLS to Kafka, PostgreSQL and the OTLP collector.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libssl3 libsasl2-2 libzstd1 libcurl4 zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=builder /out/ /usr/local/bin/
# Numeric user so that Kubernetes runAsNonRoot can verify it without /etc/passwd.
# Nothing is written outside /tmp (an emptyDir in the chart; the root fs is read-only).
USER 10001:10001
# MALLOC_ARENA_MAX: the Rust code allocates through mimalloc, but SQLite and
# librdkafka use glibc, which otherwise keeps an arena per busy thread and
# hands little back; 2 took the embedded api from 90 to 70 MB RSS under load
# (bench/README.md).
ENV HOME=/tmp \
    MALLOC_ARENA_MAX=2 \
    LOG_FORMAT=json \
    HTTP_ADDR=0.0.0.0:8080 \
    METRICS_ADDR=0.0.0.0:9090
EXPOSE 8080 9090
CMD ["/usr/local/bin/analytics-api"]
