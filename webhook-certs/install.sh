#!/usr/bin/env bash
# Installs the kubetx webhook's certificate into a cluster. See
# webhook-certs/README.md. Run it as a cluster admin, after (or before, and
# again after) `kubectl apply -k manifests/`:
#
#   webhook-certs/install.sh [OUT_DIR]      (default: webhook-certs/out)
#
# 1. makes (or reuses) the CA and the serving certificate in OUT_DIR with
#    make-certs.sh (`kubetx certs`);
# 2. creates namespace kubetx-system if it is missing;
# 3. creates or updates the TLS Secret kubetx-webhook-tls that the kubetx
#    pods mount, and restarts them when an existing certificate changed
#    (the kubelet may take a minute or more to update a mounted Secret; a
#    rolling restart serves the new certificate at once);
# 4. writes the CA as caBundle into every webhook of the
#    ValidatingWebhookConfiguration and MutatingWebhookConfiguration
#    `kubetx`, when they exist.
#
# Environment: KUBECTL, the kubectl command with any flags of its own
# (default: kubectl; e.g. KUBECTL="kubectl --context prod"); KUBECONFIG as
# kubectl reads it. Running it again is safe: it changes only what differs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/webhook-certs/out}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac
read -r -a kubectl <<< "${KUBECTL:-kubectl}"

# The names manifests/ uses (deployment.yaml, webhooks.yaml).
namespace=kubetx-system
secret=kubetx-webhook-tls
deployment=kubetx
configuration=kubetx

say() { echo "install.sh: $*" >&2; }

ca_bundle="$("$root/webhook-certs/make-certs.sh" "$out")"

if ! "${kubectl[@]}" get namespace "$namespace" -o name >/dev/null 2>&1; then
  "${kubectl[@]}" create namespace "$namespace" >/dev/null
  say "created namespace $namespace"
fi

# Server-side apply: creates or updates the Secret, and (unlike client-side
# apply) keeps no copy of the key in a last-applied annotation.
old_cert="$("${kubectl[@]}" -n "$namespace" get secret "$secret" -o 'jsonpath={.data.tls\.crt}' 2>/dev/null || true)"
"${kubectl[@]}" -n "$namespace" create secret tls "$secret" \
    --cert="$out/tls.crt" --key="$out/tls.key" --dry-run=client -o yaml \
  | "${kubectl[@]}" apply --server-side --force-conflicts --field-manager=kubetx-webhook-certs -f - >/dev/null
new_cert="$("${kubectl[@]}" -n "$namespace" get secret "$secret" -o 'jsonpath={.data.tls\.crt}')"
say "Secret $namespace/$secret holds $out/tls.crt"
if [[ -n "$old_cert" && "$old_cert" != "$new_cert" ]] \
    && "${kubectl[@]}" -n "$namespace" get deployment "$deployment" -o name >/dev/null 2>&1; then
  "${kubectl[@]}" -n "$namespace" rollout restart deployment "$deployment" >/dev/null
  say "the certificate changed: restarted deployment $namespace/$deployment"
fi

# A strategic merge patch matches webhooks by name, so each keeps its other
# fields. manifests/ never names caBundle, so re-applying them keeps it.
missing=0
for kind in validatingwebhookconfiguration mutatingwebhookconfiguration; do
  if ! names="$("${kubectl[@]}" get "$kind" "$configuration" -o 'jsonpath={range .webhooks[*]}{.name}{" "}{end}' 2>/dev/null)"; then
    say "$kind/$configuration does not exist yet: run 'kubectl apply -k manifests/', then this script again"
    missing=1
    continue
  fi
  entries=""
  for webhook in $names; do
    entries="${entries:+$entries,}{\"name\":\"$webhook\",\"clientConfig\":{\"caBundle\":\"$ca_bundle\"}}"
  done
  if [[ -n "$entries" ]]; then
    "${kubectl[@]}" patch "$kind" "$configuration" --type=strategic -p "{\"webhooks\":[$entries]}" >/dev/null
    say "caBundle set on $kind/$configuration (${names% })"
  fi
done
if [[ "$missing" == 0 ]]; then say "done"; fi
