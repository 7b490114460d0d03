#!/usr/bin/env bash
# Test tooling: builds the Switchyard image from the repository's Dockerfile on a machine where no
# registry can be reached (users just run `docker build -t switchyard .`).
#
# Default ("prebuilt"): the Dockerfile's `runtime` stage is built as written (user, data directory,
# health check, STOPSIGNAL, entrypoint, ui/), on the local BASE from scripts/docker-base-image.sh;
# the `build` stage's output (package.json, production node_modules, dist/) is produced here with the
# same commands (tsc -p tsconfig.build.json, npm prune --omit=dev) from the checked-out tree and this
# machine's node_modules, then copied in exactly as the Dockerfile's last stage does (COPY … /app).
# `npm ci` inside a build container would need the npm registry, which offline CI cannot promise.
#
# --full: the whole Dockerfile, build stage included (needs the npm registry from build containers;
# uses --network host, since dockerd may run without NAT).
#
# Usage: scripts/docker-app-image.sh [--full] [--base IMAGE] [image]
#   image default: switchyard-test/switchyard:local; base default: switchyard-test/node-base:local
#   (a switchyard-test/* base is built or refreshed first by scripts/docker-base-image.sh).
# Quick when nothing changed: Docker's layer cache matches the same files.
set -euo pipefail
cd "$(dirname "$0")/.."

full=0
BASE=switchyard-test/node-base:local
while [ $# -gt 0 ]; do
  case "$1" in
    --full) full=1; shift ;;
    --base) BASE="$2"; shift 2 ;;
    -*) echo "docker-app-image: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
IMAGE="${1:-switchyard-test/switchyard:local}"
# The legacy builder works with every docker CLI (BuildKit needs the buildx plugin on recent ones).
export DOCKER_BUILDKIT=0
log="$(mktemp)"
df="$(mktemp)"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx" "$log" "$df"' EXIT
# docker build, quiet unless it fails.
build() {
  if ! docker build "$@" >"$log" 2>&1; then
    grep -v -e DEPRECATED -e 'legacy builder' -e 'BuildKit is currently disabled' -e 'environment-variable' "$log" >&2
    exit 1
  fi
}
previous="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
# A rebuilt image leaves the previous one untagged: remove it unless something still uses it.
drop_previous() {
  local current
  current="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
  if [ -n "$previous" ] && [ "$previous" != "$current" ]; then docker rmi "$previous" >/dev/null 2>&1 || true; fi
}

case "$BASE" in
  switchyard-test/*) bash scripts/docker-base-image.sh "$BASE" ;;
esac

if [ "$full" = 1 ]; then
  build --network host --build-arg BASE="$BASE" -t "$IMAGE" .
  drop_previous
  echo "docker-app-image: built $IMAGE (full Dockerfile)"
  exit 0
fi

[ -d node_modules ] || { echo "docker-app-image: run npm ci first (node_modules is missing)" >&2; exit 1; }
build --target runtime --build-arg BASE="$BASE" -t "$IMAGE-runtime" .

# The build stage's `npm run build`. tsc emits even when it reports type errors; `npm test`'s
# typecheck is the gate for those, so an image is still built (and the errors shown).
if ! node_modules/.bin/tsc -p tsconfig.build.json --outDir "$ctx/dist" >"$log" 2>&1; then
  echo "docker-app-image: tsc reported errors (building from its output anyway):" >&2
  head -20 "$log" >&2
fi
[ -f "$ctx/dist/cli/main.js" ] || { echo "docker-app-image: tsc emitted no dist/cli/main.js" >&2; exit 1; }
# The build stage's `npm prune --omit=dev`, on a copy of this machine's node_modules (offline).
cp -a node_modules package.json package-lock.json "$ctx/"
(cd "$ctx" && npm prune --omit=dev --ignore-scripts --offline --no-audit --no-fund --loglevel=error >/dev/null)
rm "$ctx/package-lock.json"
# The Dockerfile's last stage, `FROM runtime` + `COPY --from=build /out /app`.
printf 'FROM %s\nCOPY . /app\n' "$IMAGE-runtime" >"$df"
build -t "$IMAGE" -f "$df" "$ctx"
drop_previous
echo "docker-app-image: built $IMAGE (runtime stage + prebuilt output, base $BASE)"
