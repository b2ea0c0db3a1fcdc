# One image for both processes: the API (default command) and the worker
# (`node dist/worker/main.js`); the tools: `node dist/worker/dlq-cli.js list|replay`,
# `node dist/api/keys-cli.js create|list|revoke`.
#
# Lean by default: the Compose stack runs on PostgreSQL, so the native SQLite driver
# (better-sqlite3, a C++ compile where no prebuilt binary can be downloaded) is left
# out, and so is the toolchain that builds it. A process asked for SQLite says so and
# stops. `docker build --build-arg WITH_SQLITE=true .` puts SQLite in, compiled in a
# layer of its own that stays cached until the lockfile changes.

# --- build: compile TypeScript (and, with WITH_SQLITE=true, the native SQLite addon)
FROM node:20-bookworm-slim AS build
ARG WITH_SQLITE=false
WORKDIR /app
RUN if [ "$WITH_SQLITE" = true ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends python3 make g++ \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY package.json package-lock.json ./
# No install scripts: the only ones that matter are better-sqlite3's compile (below,
# when wanted) and esbuild's binary check (esbuild is a dev tool the build does not run).
RUN npm ci --ignore-scripts --no-audit --no-fund
RUN if [ "$WITH_SQLITE" = true ]; then npm rebuild better-sqlite3; fi
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY worker ./worker
COPY shared ./shared
RUN npm run build \
 && if [ "$WITH_SQLITE" != true ]; then npm pkg delete dependencies.better-sqlite3; fi \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: production dependencies and compiled JavaScript only, as a non-root user
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# The build stage's package.json: it lists better-sqlite3 only when the image has it.
COPY --from=build --chown=node:node /app/package.json ./
# A SQLite store (WITH_SQLITE=true and a sqlite: DATABASE_URL) keeps its file here.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
CMD ["node", "dist/api/main.js"]
