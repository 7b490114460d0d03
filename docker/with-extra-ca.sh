#!/bin/sh
# Runs a command (the image build's `npm ci`) trusting one more certificate authority, for builds
# behind a TLS-intercepting proxy: EXTRA_CA_CERT holds the CA certificate (PEM). Node, and so npm,
# adds it to its default roots through NODE_EXTRA_CA_CERTS; without it nothing changes.
set -eu
if [ -n "${EXTRA_CA_CERT:-}" ]; then
  ca="${TMPDIR:-/tmp}/switchyard-extra-ca.pem"
  printf '%s\n' "$EXTRA_CA_CERT" >"$ca"
  export NODE_EXTRA_CA_CERTS="$ca"
fi
exec "$@"
