# syntax=docker/dockerfile:1
# The controller's image: `docker build -t spot-fargate-orchestrator:0.1.0 .`
#
# Three stages on Node 22 LTS (the code runs on Node 20 and later; 20 is past its end of life and the
# AWS SDK's 2027 releases need 22): production dependencies only (deps), the
# TypeScript build (build), and the runtime, which holds node_modules from deps and dist/src from
# build, owned by root and read-only to the non-root user (uid 65532), so the container runs with
# readOnlyRootFilesystem. Node is PID 1 on purpose: the `run` command handles SIGTERM and SIGINT
# itself (stop receiving, finish the messages in hand, release the leader Lease, exit 0) and spawns
# no child processes, so no init is needed to forward signals or reap zombies.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# No production dependency has an install script; --ignore-scripts keeps it that way.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The node image's own "node" user is uid 1000; run as the conventional nonroot uid instead.
USER 65532:65532
# controller.metrics_port: /metrics, /healthz, /readyz
EXPOSE 8080
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["run"]
