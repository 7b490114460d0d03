#!/bin/sh
# The example's `web` backend: busybox httpd serving a page that names this container (its hostname
# is the container ID), and /health for the check Registrator registers (SERVICE_CHECK_HTTP).
# Scale-down without a lost request: on SIGTERM (docker stop, --scale down) it first fails its
# health check, keeps serving for DRAIN_SECONDS while the agent marks it critical and the balancer
# stops sending to it, then exits 0. Only busybox applets (any busybox image works).
www=/tmp/www
busybox mkdir -p "$www"
echo "web $(busybox hostname)" >"$www/index.html"
echo ok >"$www/health"
busybox httpd -f -p "${PORT:-80}" -h "$www" &
httpd=$!
drain() {
  busybox rm -f "$www/health"
  busybox sleep "${DRAIN_SECONDS:-3}"
  kill "$httpd"
  exit 0
}
trap drain TERM INT
wait
