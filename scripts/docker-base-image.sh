#!/usr/bin/env bash
# Test tooling, not the user's path: builds a stand-in for the Dockerfile's default BASE
# (node:20-bookworm-slim) without pulling anything, for machines where no registry can be reached.
# It `docker import`s a minimal root filesystem made of this machine's files:
#   - the Node runtime ($(command -v node), as /usr/local/bin/node like the official image) and npm,
#   - the shared libraries they load (from ldd) and the dynamic loader,
#   - Debian's static busybox as /bin/sh and the usual tools (RUN steps need a shell, mkdir, chown),
#   - the official image's users: root and node (uid/gid 1000, home /home/node),
#   - this machine's nginx and its libraries, when installed (a few MB): the nginx + `switchyard
#     template` example's image installs nginx with apt-get only when its base lacks one.
#
# Usage: scripts/docker-base-image.sh [image]     (default switchyard-test/node-base:local)
# Idempotent: does nothing when the image exists and was built from the same node (and nginx)
# binary by this version of the script (a label records which). Needs root (file owners in the rootfs).
set -euo pipefail

IMAGE="${1:-switchyard-test/node-base:local}"

NODE="$(readlink -f "$(command -v node)")"
NPM_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" # …/lib/node_modules/npm
BUSYBOX="${SY_BUSYBOX:-/bin/busybox}"
NGINX=/usr/sbin/nginx
if [ ! -x "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "docker-base-image: need a static busybox at $BUSYBOX: apt-get install busybox-static" >&2
  exit 1
fi
with_nginx=0
[ -x "$NGINX" ] && with_nginx=1

# What the image is made of; a change (new node, new nginx, edited script) rebuilds it.
stamp="$("$NODE" --version) $(sha256sum <"$NODE" | cut -c1-16) $(sha256sum <"$0" | cut -c1-16)"
[ "$with_nginx" = 1 ] && stamp="$stamp nginx-$(sha256sum <"$NGINX" | cut -c1-16)"
current="$(docker image inspect -f '{{index .Config.Labels "org.switchyard.base"}}' "$IMAGE" 2>/dev/null || true)"
previous="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
if [ "$current" = "$stamp" ]; then
  echo "docker-base-image: $IMAGE already present ($("$NODE" --version))"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{bin,etc,home/node,lib64,root,tmp,usr/bin,usr/local/bin,usr/local/lib/node_modules,usr/sbin,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"
chown 1000:1000 "$root/home/node"

# A binary and every library ldd resolves for it, at the same paths (plus the ELF interpreter).
copy_with_libs() {
  local bin="$1" dest="$2" lib
  cp "$bin" "$root$dest"
  for lib in $(ldd "$bin" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
    [ -e "$root$lib" ] && continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

copy_with_libs "$NODE" /usr/local/bin/node
cp -a "$NPM_DIR" "$root/usr/local/lib/node_modules/npm"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

cp "$BUSYBOX" "$root/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -s ../../bin/busybox "$root/usr/bin/env" # npm's `#!/usr/bin/env node`

if [ "$with_nginx" = 1 ]; then
  copy_with_libs "$NGINX" /usr/sbin/nginx
  mkdir -p "$root/etc/nginx/conf.d" "$root/var/lib/nginx" "$root/var/log/nginx" "$root/run"
  [ -f /etc/nginx/mime.types ] && cp /etc/nginx/mime.types "$root/etc/nginx/mime.types"
fi

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
node:x:1000:1000::/home/node:/bin/sh
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
www-data:x:33:
nogroup:x:65534:
node:x:1000:
EOF
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

tar --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
docker import \
  --change "LABEL org.switchyard.base=\"$stamp\"" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$("$NODE" --version | sed 's/^v//')" \
  --change 'CMD ["node"]' \
  "$work/rootfs.tar" "$IMAGE" >/dev/null
# The outdated image lost its tag: remove it unless something still uses it.
[ -n "$previous" ] && docker rmi "$previous" >/dev/null 2>&1 || true
echo "docker-base-image: built $IMAGE ($("$NODE" --version), $(du -sh "$root" | cut -f1))"
