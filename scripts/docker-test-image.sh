#!/usr/bin/env bash
# Builds the image the registrator integration test runs, without pulling anything: a rootfs made of
# Debian's static busybox (package busybox-static), imported with `docker import`.
#   CMD /bin/serve: busybox httpd on $PORT (default 80) serving /www (index.html, health);
#   exits 0 on SIGTERM, so `docker stop` is quick and counts as a successful exit.
# Idempotent: does nothing when the image (tag below) already exists. Usage: scripts/docker-test-image.sh [image]
set -euo pipefail

IMAGE="${1:-${SY_DOCKER_TEST_IMAGE:-switchyard-test-busybox:2}}"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "docker-test-image: $IMAGE already present"
  exit 0
fi

BUSYBOX="${SY_BUSYBOX:-/bin/busybox}"
if [ ! -x "$BUSYBOX" ]; then
  echo "docker-test-image: $BUSYBOX not found: apt-get install busybox-static" >&2
  exit 1
fi
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "docker-test-image: $BUSYBOX is dynamically linked: apt-get install busybox-static" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root/bin" "$root/www" "$root/tmp" "$root/etc"
cp "$BUSYBOX" "$root/bin/busybox"
for applet in sh httpd nc sleep cat echo ls wget env hostname kill ps true false; do
  ln -s busybox "$root/bin/$applet"
done
cat >"$root/bin/serve" <<'EOF'
#!/bin/sh
# PID 1 ignores SIGTERM unless it handles it: exit 0 on TERM/INT so `docker stop` is immediate.
trap 'exit 0' TERM INT
httpd -f -p "${PORT:-80}" -h /www &
wait
EOF
chmod 755 "$root/bin/serve"
echo ok >"$root/www/index.html"
echo healthy >"$root/www/health"
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

tar -C "$root" -cf "$work/rootfs.tar" .
docker import \
  --change 'CMD ["/bin/serve"]' \
  --change 'EXPOSE 80' \
  --change 'ENV PATH=/bin' \
  "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "docker-test-image: built $IMAGE"
