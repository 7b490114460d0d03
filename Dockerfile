# Switchyard: one image for every subcommand (agent, lb, up, register, registrator, template).
#   docker build -t switchyard .
#   docker run --rm -p 127.0.0.1:8500:8500 -p 127.0.0.1:9080:9080 switchyard            # `up`
#   docker run --rm switchyard lb --registry http://agent:8500 --service web --listen 0.0.0.0:9080
# BASE must be a Debian-based Node 20 image with npm and a `node` user (uid 1000), as the official
# one is. Tests build from scripts/docker-base-image.sh's local stand-in, since no registry is
# reachable there (see scripts/docker-app-image.sh).
ARG BASE=node:20-bookworm-slim

# ── runtime: the final image without the application (user, data directory, ports, health check,
#    entrypoint). Built first so that its layers do not depend on the source code.
FROM ${BASE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# The data directory belongs to the unprivileged user; the application files stay root's (read-only).
RUN mkdir -p /data && chown node:node /data
COPY docker/healthcheck.mjs /app/docker/healthcheck.mjs
COPY ui /app/ui
USER node
# API and web UI, DNS (TCP and UDP), balancer.
EXPOSE 8500 8600 8600/udp 9080
# Every subcommand drains and exits 0 on SIGTERM (the balancer finishes in-flight requests first,
# up to its drain timeout: give `docker stop -t` / compose's stop_grace_period enough time).
STOPSIGNAL SIGTERM
# Probes what the running subcommand serves (docker/healthcheck.mjs); SWITCHYARD_HEALTHCHECK_URL overrides.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/docker/healthcheck.mjs"]
ENTRYPOINT ["node", "--max-semi-space-size=64", "/app/dist/cli/main.js"]
# Without arguments: everything in one process, reachable through published ports.
CMD ["up", "--http-addr", "0.0.0.0:8500", "--dns-addr", "0.0.0.0:8600", "--listen", "0.0.0.0:9080", "--data-dir", "/data"]

# ── build: compile the TypeScript, then keep only the production dependencies.
FROM ${BASE} AS build
# Behind a TLS-intercepting proxy, npm must trust the proxy's CA:
#   docker build --build-arg EXTRA_CA_CERT="$(cat corp-root-ca.pem)" -t switchyard .
# A build argument rather than a BuildKit secret, so the legacy builder (docker without buildx) builds
# this file too; a CA certificate is public, and it stays in this stage, which the image does not ship.
ARG EXTRA_CA_CERT=
WORKDIR /src
COPY package.json package-lock.json ./
COPY docker/with-extra-ca.sh /usr/local/bin/with-extra-ca
RUN EXTRA_CA_CERT="$EXTRA_CA_CERT" sh /usr/local/bin/with-extra-ca npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund \
  && mkdir /out && mv package.json node_modules dist /out/

# ── the image: runtime + the build's output (package.json is needed at run time: "type": "module").
FROM runtime
COPY --from=build /out /app
