# syntax=docker/dockerfile:1
# The controller's image: `docker build -t spot-fargate-orchestrator:0.1.0 .`
#
# Three stages on Node 24 LTS (the line the project is tested on; package.json allows >= 22): the
# production dependencies the bundle loads at run time (deps), the build (build: the type check, then
# scripts/build.ts bundles the controller into dist/src/cli.js), and the runtime, which holds
# node_modules from deps (pino and pino-pretty load from there) and dist/src from build, owned by root
# and read-only to the non-root user
# (uid 65532), so the container runs with readOnlyRootFilesystem. tini is PID 1: a process that is
# PID 1 gets no default signal handling from the kernel, so a SIGTERM that arrives before `run` has
# installed its handlers (or during `config check` and the other commands) would be ignored until the
# kubelet's SIGKILL; tini forwards it and reaps any child.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/prune-deps.ts ./scripts/
# No production dependency has an install script; --ignore-scripts keeps it that way. The bundle holds
# every other dependency, so only the packages it leaves out (scripts/build.ts UNBUNDLED_PACKAGES) and
# what they need stay: about 4 MB of the 113 MB that npm installs.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && node scripts/prune-deps.ts pino pino-pretty && npm cache clean --force

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.ts ./scripts/
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# The AWS SDK never falls back to the instance metadata service (the node's instance role) when IRSA
# or Pod Identity is missing: it fails instead. Neither of those uses the metadata service.
ENV AWS_EC2_METADATA_DISABLED=true
# glibc's allocator keeps what node frees in its arenas for reuse, and after the patch storm of a
# large interruption that was 25-30 MiB of RSS nobody used. Two arenas, and blocks over 128 KiB mapped
# on their own (returned whole when freed) with the top of the heap trimmed past 128 KiB, took peak RSS
# at 1000 Deployments from 232-252 to 203-218 MiB with phase 1 no slower
# (bench/results/2026-12-03-glibc-malloc.md).
ENV MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The node image's own "node" user is uid 1000; run as the conventional nonroot uid instead.
USER 65532:65532
# controller.metrics_port: /metrics, /healthz, /readyz
EXPOSE 8080
# --max-semi-space-size=16: Node 24 sizes V8's young generation from the machine's memory (up to 64 MiB
# per semi-space on a large node, against 16 on Node 20), which on its own added about 100 MiB of peak
# RSS at 1000 Deployments in the benchmark; 16 keeps Node 20's footprint (bench/results/2026-11-30-node24.md).
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=16", "dist/src/cli.js"]
CMD ["run"]
