# syntax=docker/dockerfile:1
# Ferry: large-attachment offloading SMTP gateway. Multi-stage: the build stage bundles the
# TypeScript and builds the native SQLite module; the runtime stage holds only the bundle and
# the production dependencies, and runs as the unprivileged "node" user.
#
#   docker build -t ferry .
#   docker run -p 2525:2525 -p 8080:8080 -v ferry-data:/data ferry
#
# The default command is `ferry start` (gateway and web in one worker process per CPU the
# container may use, the worker role once); give another command to run one role, e.g.
# `docker run ferry gateway` or `docker run ferry check-config`. With a CPU limit (--cpus),
# set FERRY_PROCESSES to it: Node counts the CPUs it may run on, not the quota.
#
# Node 24 LTS (the default below) is recommended; Ferry also runs on Node 20.19 or newer.

ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# better-sqlite3 downloads a prebuilt binary; the toolchain is for platforms without one.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY admin ./admin
COPY cli ./cli
COPY config ./config
COPY gateway ./gateway
COPY storage ./storage
COPY web ./web
COPY worker ./worker
COPY scripts/build.mjs ./scripts/build.mjs
# npm ci runs the "prepare" script, which bundles the CLI into dist/ (scripts/build.mjs, esbuild);
# then the dev dependencies go.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM ${NODE_IMAGE}
# MALLOC_ARENA_MAX=2: glibc's malloc arenas capped for every process, also with FERRY_PROCESSES=1
# (docs/operations.md, "Processes: every core"); the workers of `ferry start` get it anyway.
ENV NODE_ENV=production \
    FERRY_DATA_DIR=/data \
    MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY deploy/docker/healthcheck.mjs ./deploy/docker/healthcheck.mjs
# /data: the embedded defaults' files (SQLite database, filesystem blobs, outbox) and the spool.
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
# SMTP (use -p 25:2525 to take mail on the standard port), web downloads, metrics.port if set.
EXPOSE 2525 8080
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 \
  CMD ["node", "/app/deploy/docker/healthcheck.mjs"]
# SIGTERM from `docker stop` starts Ferry's graceful drain (shutdown.timeout, 30 s by default):
# give docker stop a longer grace, e.g. `docker stop -t 45` or stop_grace_period in compose.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/ferry.js"]
CMD ["start"]
