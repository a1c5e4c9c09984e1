# pedia's image: `make image` builds it as pedia:<version> (the workspace version, which is the
# chart's appVersion and so its default tag). The binary alone on distroless: glibc and libgcc
# only (SQLite is bundled, TLS is rustls, the database clients are pure Rust).
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p operator --bin pedia \
    && install -D -m 0755 target/release/pedia /out/pedia \
    && strip /out/pedia

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/pedia /usr/local/bin/pedia
# distroless' nonroot user; numeric, so runAsNonRoot can check it.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/pedia"]
CMD ["--help"]
