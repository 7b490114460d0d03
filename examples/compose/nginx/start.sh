#!/bin/sh
# The elb container: seed 000's `nginx & consul-template -template "…:nginx -s reload"`, with
# `switchyard template` and a clean stop. Renders once (waiting for the registry at $CONSUL), starts
# nginx, then follows the registry; on SIGTERM nginx finishes its requests (`nginx -s quit`).
# If either process dies, the container exits non-zero and Docker's restart policy takes over.
# -log-level info: every render (with the file written) and every `nginx -s reload` (with its exit
# code) is a log line in `docker compose logs elb`; consul-template's default (warn) shows neither.
set -eu
dir=/etc/switchyard-nginx
out=/var/lib/switchyard-nginx/default.conf
nginx="nginx -e stderr -c $dir/nginx.conf"
switchyard="node /app/dist/cli/main.js"

$switchyard template -log-level info -consul-addr "$CONSUL" -template "$dir/nginx.conf.ctmpl:$out" -once
$nginx -g 'daemon off;' &
nginx_pid=$!
$switchyard template -log-level info -consul-addr "$CONSUL" -template "$dir/nginx.conf.ctmpl:$out:$nginx -s reload" &
template_pid=$!

sleeper=
stop() {
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
  kill -TERM "$template_pid" 2>/dev/null || true
  $nginx -s quit 2>/dev/null || true
  wait
  exit 0
}
trap stop TERM INT
while kill -0 "$nginx_pid" 2>/dev/null && kill -0 "$template_pid" 2>/dev/null; do
  sleep 1 &
  sleeper=$!
  wait "$sleeper" || true
done
echo "elb: $(kill -0 "$nginx_pid" 2>/dev/null && echo 'switchyard template' || echo nginx) exited; stopping" >&2
kill -TERM "$template_pid" "$nginx_pid" 2>/dev/null || true
wait
exit 1
