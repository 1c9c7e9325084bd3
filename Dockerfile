# Container image of cloud-session-exporter: build with dev dependencies, run with production ones only.
# How to run it, and how it is verified without a Docker engine: docs/container.md.

# Node.js 22 LTS on Debian bookworm slim, pinned to a full version (bump both stages together).
FROM node:22.21.1-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build


FROM node:22.21.1-bookworm-slim AS runtime

# tini as PID 1 forwards SIGTERM/SIGINT to node and reaps zombies (same effect as `docker run --init`).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

# MALLOC_MMAP_THRESHOLD_: socket read buffers (64 KiB) are mapped and unmapped, so memory read for an oversized cloud
# answer goes back to the OS when it is freed instead of staying in glibc's heap (README, "Memory").
ENV NODE_ENV=production MALLOC_MMAP_THRESHOLD_=65536
WORKDIR /app
COPY package.json package-lock.json ./
# No runtime dependency needs an install script; skipping them keeps the image free of build tooling.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/dist/emulator ./dist/emulator
COPY config ./config

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
# Reported as the revision label of cloud_session_exporter_build_info.
ENV CSE_REVISION=${REVISION}
LABEL org.opencontainers.image.title="cloud-session-exporter" \
      org.opencontainers.image.description="Prometheus exporter for cloud session and connection APIs: ApsaraMQ for MQTT device status, TencentDB for MongoDB client connections, ApsaraDB for Redis sessions" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.documentation="docs/container.md" \
      org.opencontainers.image.base.name="docker.io/library/node:22.21.1-bookworm-slim"

# The config is a mounted file; secrets come from environment variables or mounted files it names.
RUN mkdir -p /etc/cloud-session-exporter
USER node:node
EXPOSE 10780

# No curl in slim images: node itself probes the liveness endpoint. Set HEALTHCHECK_URL when the
# exporter listens elsewhere (--web.listen-address).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.HEALTHCHECK_URL || 'http://127.0.0.1:10780/-/healthy', {signal: AbortSignal.timeout(4000)}).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/src/main.js", "--config.file=/etc/cloud-session-exporter/config.yaml"]
