# antibody for Cloud Run: a static-enough release binary on a distroless, non-root base.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin antibody && strip target/release/antibody

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/antibody /usr/local/bin/antibody
USER nonroot
# Cloud Run sets PORT; tokens come from the metadata server. Mount a config at /etc/antibody/antibody.toml
# (for example from Secret Manager) or leave the safe defaults.
ENV ANTIBODY_STATE=/tmp/antibody.sqlite
ENTRYPOINT ["/usr/local/bin/antibody"]
CMD ["serve", "--state", "/tmp/antibody.sqlite"]
