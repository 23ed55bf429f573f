# Dockyard's deployment image: Node 24 runs the TypeScript sources directly (type stripping), no build step.
# Build:  docker build -t dockyard .
# Run:    see "Running the container image" in README.md (it needs the host's Docker socket).

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    DATA_DIR=/var/lib/dockyard
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY src ./src
COPY migrations ./migrations
RUN mkdir -p /var/lib/dockyard && chown node:node /var/lib/dockyard
USER node
VOLUME ["/var/lib/dockyard"]
EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "src/main.ts"]
