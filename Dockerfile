# syntax=docker/dockerfile:1
# openai-tasks: docker build -t openai-tasks .
#   --build-arg VERSION=… --build-arg REVISION=$(git rev-parse HEAD) --build-arg CREATED=$(date -u +%FT%TZ)
# fill the image's OCI labels.

# Build stage: full install, compile TypeScript to dist/.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY schemas ./schemas
RUN npm run build

# Runtime stage: production dependencies only, tini as PID 1, non-root.
FROM node:24-bookworm-slim AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="openai-tasks" \
      org.opencontainers.image.description="HTTP microservice exposing the OpenAI component's tasks as validated REST endpoints" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/node:24-bookworm-slim"
# tini forwards SIGTERM to Node (PID 1 gets no default signal handlers) and reaps zombies.
# jemalloc replaces glibc's malloc (bench/README.md): glibc keeps the memory a burst of
# large answers fragmented in its main heap for good; jemalloc hands freed pages back within a
# second or two. The link gives it one path on every architecture.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini libjemalloc2 \
 && ln -s "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /usr/local/lib/libjemalloc.so.2 \
 && rm -rf /var/lib/apt/lists/*
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY schemas ./schemas
# Files stay root-owned and read-only to the process; `node` is uid 1000 in the base image.
USER node
EXPOSE 8080
STOPSIGNAL SIGTERM
# No curl in the image: Node's own fetch probes the liveness route.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
# The same flags as `npm start` (bench/README.md): a 16 MB young generation; no
# pretenuring, which otherwise sends per-request objects straight to the old generation; and
# young-generation collections on the main thread alone, which never wait for a helper thread
# that a busy CPU has descheduled.
CMD ["node", "--max-semi-space-size=16", "--no-allocation-site-pretenuring", "--no-parallel-scavenge", "dist/server.js"]
