# syntax=docker/dockerfile:1
# One image, three binaries: analytics-api, analytics-processor, analytics-migrate
# (in /usr/local/bin). The Helm chart picks the binary with `command:`.
#
#   docker build -t analytics:dev .
#
# Stages: chef (toolchain + cargo-chef) -> planner (dependency recipe from the
# manifests) -> builder (dependencies first, cached until Cargo.toml/Cargo.lock
# change; then the workspace) -> runtime (debian slim, non-root, no toolchain).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS chef
# The same native packages CI installs: rdkafka builds librdkafka with cmake and
# links OpenSSL, SASL, zlib, zstd and curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake libcurl4-openssl-dev libsasl2-dev libssl-dev zlib1g-dev libzstd-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
# recipe.json holds only the manifests and lockfile: it changes when dependencies do.
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The expensive layer: every dependency (librdkafka included), built once per
# dependency change.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo chef cook --release --locked --bins --recipe-path recipe.json
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && install -m 0755 target/release/analytics-api target/release/analytics-processor target/release/analytics-migrate /out/

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
ENV HOME=/tmp \
    LOG_FORMAT=json \
    HTTP_ADDR=0.0.0.0:8080 \
    METRICS_ADDR=0.0.0.0:9090
EXPOSE 8080 9090
CMD ["/usr/local/bin/analytics-api"]
