# antibody for Cloud Run: a static-enough release binary on a distroless, non-root base.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin antibody && strip target/release/antibody

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/antibody /usr/local/bin/antibody
USER nonroot
# Cloud Run sets PORT; tokens come from the metadata server. Mount a config at /etc/antibody/antibody.toml
# (for example from Secret Manager) or leave the safe defaults. The journal is named by ANTIBODY_STATE only, never by
# a flag here: a deployment that sets it (the Cloud SQL secret of `antibody plan --cloudsql`) must win over this
# default, and a flag would beat it.
ENV ANTIBODY_STATE=/tmp/antibody.sqlite
ENTRYPOINT ["/usr/local/bin/antibody"]
CMD ["serve"]
