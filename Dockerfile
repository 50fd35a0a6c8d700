# Build: docker build -t riskgate .
# Run:   docker run -p 50051:50051 -p 9464:9464 riskgate
FROM rust:1.95-bookworm AS build
WORKDIR /src
# protoc comes from the protoc-bin-vendored crate: no system package needed.
COPY Cargo.toml Cargo.lock build.rs clippy.toml ./
COPY proto proto
COPY src src
COPY benches benches
COPY rules rules
COPY models models
RUN cargo build --release --locked --bin riskgate \
 && strip target/release/riskgate

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin riskgate
COPY --from=build /src/target/release/riskgate /usr/local/bin/riskgate
COPY rules/default.toml /etc/riskgate/rules.toml
COPY models/default.json /etc/riskgate/model.json
USER 10001:10001
ENV RISKGATE_LISTEN=0.0.0.0:50051 \
    RISKGATE_METRICS_LISTEN=0.0.0.0:9464 \
    RISKGATE_LOG_FORMAT=json \
    RISKGATE_DRAIN_DELAY_MS=5000
# 50051: gRPC (RiskService, grpc.health.v1, reflection) and HTTP/JSON; 9464: /metrics
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["riskgate", "health", "--addr", "http://127.0.0.1:50051"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["riskgate"]
CMD ["serve"]
