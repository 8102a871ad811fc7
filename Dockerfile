# pipewright itself, as a container image. The base images are build arguments so the image can be
# built where no registry is reachable, from locally made bases (steps/rust, steps/debian-git; see
# .ci/setup):
#
#   docker build --build-arg BUILD_IMAGE=local/rust:1.95 --build-arg RUNTIME_IMAGE=local/debian-git:bookworm .
ARG BUILD_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pipewright && strip target/release/pipewright

FROM ${RUNTIME_IMAGE}
# git: the fallback for what gix cannot do (submodules, LFS); ca-certificates: https remotes. A base
# that has both (local/debian-git) needs no apt, and so no network, here.
RUN if command -v git >/dev/null && [ -s /etc/ssl/certs/ca-certificates.crt ]; then exit 0; fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/pipewright /usr/local/bin/pipewright
ENTRYPOINT ["pipewright"]
CMD ["--help"]
