# The salescast image: the release binary of `salescast` on a minimal base,
# running as a non-root user, `salescast serve` by default (the web tier of
# pipelines/web.yml). .github/workflows/release.yml builds and pushes it;
# .ci/lint checks it with hadolint. It is not built by the tests: no Docker
# daemon runs where they do.
#
#   docker build -t salescast .
#   docker run --rm -p 8080:8080 -e SALESCAST_LAKE=s3://LAKE_BUCKET \
#       -e SALESCAST_REGISTRY=s3://REGISTRY_BUCKET/registry salescast
#
# The base images are pinned by tag, not by digest: digests could not be
# looked up where this file was written (no image registry is reachable
# there). To pin one, append the digest that
# `docker buildx imagetools inspect IMAGE:TAG` prints (IMAGE:TAG@sha256:...).

# Build on Debian 12 (bookworm), the glibc of the runtime image, so the binary
# needs no newer glibc than the one it runs on. The slim image has gcc, which
# the C parts of the dependency tree (ring, zstd-sys, lz4-sys) compile with.
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /build
# The whole workspace: the root package (the binary, crates/cli) and every
# member under crates/.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# The cache mounts (BuildKit) keep the downloaded crates and the compiled
# dependencies between builds on one machine; the binary leaves the cached
# target/ stripped, as pipelines/package-release ships it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin salescast \
    && mkdir -p /out/etc/salescast \
    && strip -o /out/salescast target/release/salescast
# The retailer's salescast.toml, when the repository has one (the release
# tarball carries it too); .dockerignore lets nothing else in.
COPY . /context
RUN if [ -f /context/salescast.toml ]; then cp /context/salescast.toml /out/etc/salescast/; fi

# Run on distroless "cc": glibc, libgcc_s, CA certificates and a `nonroot`
# user (uid 65532), with no shell and no package manager. Its only tags are
# moving ones (latest, nonroot, debug); `nonroot` is the one that runs as
# that user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/salescast /salescast
COPY --from=build /out/etc/salescast /etc/salescast
# salescast reads salescast.toml from its working folder when present
# (SALESCAST_CONFIG or --config name another file); without one it runs on
# the defaults, and SALESCAST_LAKE and SALESCAST_REGISTRY say where the data is.
WORKDIR /etc/salescast
# Numeric, so that a platform can check it is not root without /etc/passwd.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/salescast"]
CMD ["serve", "--listen", "0.0.0.0:8080"]
