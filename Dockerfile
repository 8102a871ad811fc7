# pipewright itself, as a container image. The base images are build arguments so the image can be
# built where no registry is reachable, from locally made bases (see .ci/setup and steps/).
ARG BUILD_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pipewright && strip target/release/pipewright

FROM ${RUNTIME_IMAGE}
# git: the fallback for what gix cannot do (submodules, LFS); ca-certificates: https remotes.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/pipewright /usr/local/bin/pipewright
ENTRYPOINT ["pipewright"]
CMD ["--help"]
