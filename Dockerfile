# switchboard: a Socket.IO server whose routing is configuration.
#
#   docker build -t switchboard .
#   docker run -p 3000:3000 -v "$PWD/myapp:/etc/switchboard" switchboard
#
# The mounted folder holds routes.toml and whatever it names (pages, scripts); edits to it
# hot-reload inside the container.

# --- build: the release binary, exactly as locked ---
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin switchboard

# --- client: the socket.io-client bundle from npm, as locked ---
FROM node:20-bookworm-slim AS client
WORKDIR /client
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- runtime: small, non-root ---
FROM debian:bookworm-slim
# The system's CA roots verify the HTTPS a routes file names (a JWKS URL).
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
  && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin switchboard
COPY --from=build /src/target/release/switchboard /usr/local/bin/switchboard
COPY --from=client /client/node_modules/socket.io-client/package.json /usr/share/switchboard/socket.io-client/package.json
COPY --from=client /client/node_modules/socket.io-client/dist /usr/share/switchboard/socket.io-client/dist
COPY routes.toml /etc/switchboard/routes.toml
COPY public /etc/switchboard/public
COPY scripts/*.rhai /etc/switchboard/scripts/
ENV SWITCHBOARD_CONFIG=/etc/switchboard/routes.toml \
    SWITCHBOARD_CLIENT_DIR=/usr/share/switchboard/socket.io-client \
    SWITCHBOARD_LISTEN=0.0.0.0:3000
USER switchboard
EXPOSE 3000
# bash's /dev/tcp: no HTTP client needed in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3000 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/switchboard"]
