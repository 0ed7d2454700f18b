# syntax=docker/dockerfile:1
# Multi-stage build of the async-job service.
#   docker build -t async-job-service .
#   docker run --rm -p 3000:3000 -e REDIS_URL=redis://host.docker.internal:6379 async-job-service
# Base image matches the Node major CI runs (package.json: "node": ">=20.19").

# ---- Stage 1: compile TypeScript (dev dependencies included) ----
FROM node:20-bookworm-slim AS build
WORKDIR /app

# Dependencies first, so this layer is reused until package*.json change.
# --ignore-scripts: the only install scripts belong to dev-only tools (esbuild, ssh2/cpu-features for
# testcontainers, protobufjs) and none is needed to run tsc; skipping them avoids node-gyp attempts in a slim image.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

# `npm run build` = tsc -p tsconfig.build.json (src/ -> dist/) + copy-lua.mjs (src/store/lua -> dist/store/lua) + copy-admin-ui.mjs (the dashboard).
COPY tsconfig*.json ./
COPY scripts/ ./scripts/
COPY src/ ./src/
RUN npm run build \
 && test -f dist/server.js \
 && ls dist/store/lua/*.lua >/dev/null \
 && test -f dist/admin-ui/index.html && test -f dist/cli/jobs.js

# ---- Stage 2: runtime (production dependencies only) ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app

# Production dependencies only. `npm ci` does not run this package's `prestart` (only `npm start` does),
# and no production dependency has an install script; --ignore-scripts makes that explicit.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# Compiled output, including dist/store/lua/*.lua which the Redis store reads at start-up.
# Files stay root-owned (world-readable); the service only reads them.
COPY --from=build /app/dist ./dist

# The service binds 127.0.0.1 by default; inside a container it must listen on all interfaces.
ENV HOST=0.0.0.0 PORT=3000
EXPOSE 3000

USER node

# Liveness only (never depends on Redis). Slim images have no curl, so use node's built-in fetch.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"

# Exec form: node is PID 1 and receives SIGTERM directly; graceful shutdown (drain workers for
# SHUTDOWN_GRACE_S, then re-queue) is handled in-process. Not `npm start`, which would run the prestart build check.
CMD ["node", "dist/server.js"]
