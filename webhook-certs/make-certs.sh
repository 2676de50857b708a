#!/usr/bin/env bash
# Makes the kubetx webhook's CA and serving certificate and prints the
# caBundle (base64 PEM of the CA) on stdout. See webhook-certs/README.md.
#
#   webhook-certs/make-certs.sh [OUT_DIR [kubetx certs flags...]]   (default: webhook-certs/out)
#
# It also makes the apiserver's client certificate and the control-plane
# files (OUT_DIR/control-plane/); flags after OUT_DIR go to `kubetx certs`
# (e.g. --service-ip, --node-dir).
# A relative OUT_DIR is taken from where you run the script; the default is
# always the one inside the repository.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/webhook-certs/out}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac

node="$root/node_modules/.bin/node"
if [[ ! -x "$node" ]]; then
  echo "make-certs.sh: $node is missing; run 'npm ci' in $root first (it installs the project's Node 24)" >&2
  exit 1
fi

cd "$root"
exec "$node" src/cli/kubetx.ts certs --out "$out" "${@:2}"
