#!/usr/bin/env bash
# Installs the kubetx webhook's certificate into a cluster. See
# webhook-certs/README.md. Run it as a cluster admin, after (or before, and
# again after) `kubectl apply -k manifests/`:
#
#   webhook-certs/install.sh [OUT_DIR]      (default: webhook-certs/out)
#
# 1. makes (or reuses) the CA and the serving certificate in OUT_DIR with
#    make-certs.sh (`kubetx certs`), and the apiserver's client certificate
#    with the files each control-plane node needs (OUT_DIR/control-plane/);
# 2. creates namespace kubetx-system if it is missing;
# 3. creates or updates the TLS Secret kubetx-webhook-tls and the ConfigMap
#    kubetx-apiserver-client-ca (the CA kubetx checks the apiserver's client
#    certificate against) that the kubetx pods mount, and restarts them when
#    either changed (the kubelet may take a minute or more to update a
#    mounted volume; a rolling restart serves the new files at once);
# 4. writes the CA as caBundle into every webhook of the
#    ValidatingWebhookConfiguration and MutatingWebhookConfiguration
#    `kubetx`, when they exist;
# 5. says what to copy to the control-plane nodes (manifests/README.md,
#    "Only the apiserver may call kubetx").
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
client_ca=kubetx-apiserver-client-ca
service=kubetx

say() { echo "install.sh: $*" >&2; }

# The audit and authorization webhooks are called by URL, and the apiserver
# on the host network cannot resolve cluster DNS: the files name the
# Service's ClusterIP once the Service exists.
service_ip="$("${kubectl[@]}" -n "$namespace" get service "$service" -o 'jsonpath={.spec.clusterIP}' 2>/dev/null || true)"
ca_bundle="$("$root/webhook-certs/make-certs.sh" "$out" ${service_ip:+--service-ip "$service_ip"})"

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
# A CA certificate is public: a ConfigMap.
old_ca="$("${kubectl[@]}" -n "$namespace" get configmap "$client_ca" -o 'jsonpath={.data.ca\.crt}' 2>/dev/null || true)"
"${kubectl[@]}" -n "$namespace" create configmap "$client_ca" --from-file=ca.crt="$out/apiserver-client-ca/ca.crt" --dry-run=client -o yaml \
  | "${kubectl[@]}" apply --server-side --force-conflicts --field-manager=kubetx-webhook-certs -f - >/dev/null
new_ca="$("${kubectl[@]}" -n "$namespace" get configmap "$client_ca" -o 'jsonpath={.data.ca\.crt}')"
say "ConfigMap $namespace/$client_ca holds $out/apiserver-client-ca/ca.crt"
if { [[ -n "$old_cert" && "$old_cert" != "$new_cert" ]] || [[ -n "$old_ca" && "$old_ca" != "$new_ca" ]]; } \
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
say "the apiserver presents $out/apiserver-client.crt to kubetx: copy $out/control-plane/ to /etc/kubernetes/kubetx/ on every control-plane node and add its flags (manifests/README.md, \"Only the apiserver may call kubetx\")"
if [[ -z "$service_ip" ]]; then say "Service $namespace/$service does not exist yet: run this script again after 'kubectl apply -k manifests/' for the audit and authorization webhook files"; fi
if [[ "$missing" == 0 ]]; then say "done"; fi
