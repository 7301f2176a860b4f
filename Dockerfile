# Build and run the MEIT ECG report service.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin meit

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/meit /usr/local/bin/meit
ENV MEIT_HOME=/var/cache/meit
VOLUME /var/cache/meit
EXPOSE 8080
ENTRYPOINT ["meit"]
CMD ["serve"]
