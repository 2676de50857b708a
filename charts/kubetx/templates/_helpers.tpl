{{/*
kubetx's names are the ones DESIGN.md section 2 promises other tools (the
namespace, the ServiceAccount that the webhooks' matchConditions name, the
Service, the webhook configurations, the roles): fixed, not derived from
the release name. So one release per cluster, in kubetx-system.
*/}}
{{- define "kubetx.namespace" -}}
{{- if ne .Release.Namespace "kubetx-system" -}}
{{- fail (printf "kubetx: install the chart into namespace kubetx-system (helm install kubetx charts/kubetx -n kubetx-system --create-namespace); kubetx's own names are fixed, got namespace %q" .Release.Namespace) -}}
{{- end -}}
{{- .Release.Namespace -}}
{{- end -}}

{{/* The labels every object carries: the ones manifests/ sets, and Helm's. */}}
{{- define "kubetx.labels" -}}
app.kubernetes.io/name: kubetx
app.kubernetes.io/part-of: kubetx
{{ include "kubetx.helmLabels" . }}
{{- end -}}

{{/* The labels Helm charts add: which release, which version, who manages it. */}}
{{- define "kubetx.helmLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "kubetx.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The DNS names the apiserver checks the serving certificate for (webhook-certs/README.md). */}}
{{- define "kubetx.serviceDnsNames" -}}
{{- $ns := include "kubetx.namespace" . -}}
{{- list "kubetx" (printf "kubetx.%s" $ns) (printf "kubetx.%s.svc" $ns) (printf "kubetx.%s.svc.cluster.local" $ns) | toJson -}}
{{- end -}}

{{/* The serving Certificate that cert-manager's CA injector reads the caBundle from. */}}
{{- define "kubetx.certManagerCertificate" -}}
kubetx-webhook
{{- end -}}

{{/*
The objects of one file of manifests/, as a JSON list: the chart installs
what `kubectl apply -k manifests/` does and changes only what a value says.
files/manifests/ is the chart's copy (a chart cannot read files outside
itself), kept equal to manifests/ by `npm run chart:sync`. Takes (list $
"rbac.yaml").
*/}}
{{- define "kubetx.manifest" -}}
{{- $root := index . 0 -}}
{{- $path := printf "files/manifests/%s" (index . 1) -}}
{{- $text := $root.Files.Get $path -}}
{{- if not $text -}}
{{- fail (printf "kubetx chart: %s is missing or empty; run npm run chart:sync" $path) -}}
{{- end -}}
{{- $objects := list -}}
{{- range $document := regexSplit "(?m)^---[ \\t]*$" $text -1 -}}
{{- $object := fromYaml $document -}}
{{- if hasKey $object "Error" -}}
{{- fail (printf "kubetx chart: %s: %s" $path $object.Error) -}}
{{- end -}}
{{- /* A document of comments only is an empty object. */ -}}
{{- if $object -}}
{{- $objects = append $objects $object -}}
{{- end -}}
{{- end -}}
{{- toJson $objects -}}
{{- end -}}

{{/* One object of manifests/ as a YAML document, with Helm's labels beside its own. Takes (list $ object). */}}
{{- define "kubetx.object" -}}
{{- $object := index . 1 -}}
{{- $labels := merge (include "kubetx.helmLabels" (index . 0) | fromYaml) ($object.metadata.labels | default dict) -}}
{{- $_ := set $object.metadata "labels" $labels -}}
---
{{ toYaml $object }}
{{- end -}}

{{/*
Who may call kubetx (apiserverClient in values.yaml).
manifests/deployment.yaml runs `kubetx serve --client-ca` with the ca.crt
of ConfigMap kubetx-apiserver-client-ca, mounted as volume
apiserver-client-ca. In mode certificate this points that volume at the
ConfigMap or Secret the values name and passes names other than kubetx's
default (kube-apiserver) as --apiserver-client. In mode networkPolicy it
makes what manifests/components/control-plane-only makes: --no-client-auth
for --client-ca, and the volume optional, since nothing reads it (the
NetworkPolicy is templates/networkpolicy.yaml). Takes (list $ podSpec
container) and changes those two in place.
*/}}
{{- define "kubetx.apiserverClient" -}}
{{- $values := (index . 0).Values -}}
{{- $client := $values.apiserverClient -}}
{{- $pod := index . 1 -}}
{{- $container := index . 2 -}}
{{- $volume := dict -}}
{{- range $pod.volumes -}}
{{- if eq .name "apiserver-client-ca" -}}
{{- $volume = . -}}
{{- end -}}
{{- end -}}
{{- if not $volume -}}
{{- fail "kubetx chart: manifests/deployment.yaml should mount the apiserver's client CA as volume apiserver-client-ca" -}}
{{- end -}}
{{- if eq $client.mode "networkPolicy" -}}
{{- if $values.auditSink.enabled -}}
{{- fail "kubetx: auditSink.enabled=true needs apiserverClient.mode=certificate: the audit sink takes batches only from the apiserver's client certificate (they decide transactions' outcomes), and in mode networkPolicy the apiserver presents none. Turn the audit sink off, or use mode certificate" -}}
{{- end -}}
{{- $_ := set $volume.configMap "optional" true -}}
{{- include "kubetx.replaceFlag" (list $container "--client-ca" (list "--no-client-auth")) -}}
{{- else -}}
{{- if eq $client.clientCA.kind "ConfigMap" -}}
{{- $_ := set $volume.configMap "name" $client.clientCA.name -}}
{{- else if eq $client.clientCA.kind "Secret" -}}
{{- $_ := unset $volume "configMap" -}}
{{- $_ = set $volume "secret" (dict "secretName" $client.clientCA.name "items" (list (dict "key" "ca.crt" "path" "ca.crt"))) -}}
{{- else -}}
{{- fail (printf "kubetx: apiserverClient.clientCA.kind must be ConfigMap or Secret, got %q" $client.clientCA.kind) -}}
{{- end -}}
{{- $names := join "," $client.names -}}
{{- if ne $names "kube-apiserver" -}}
{{- $_ := set $container "args" (concat $container.args (list "--apiserver-client" $names)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Where /metrics is served (metricsPort in values.yaml): the value after
--metrics-port in manifests/deployment.yaml's args, and the container's
port named metrics. Takes (list $ container) and changes it in place.
*/}}
{{- define "kubetx.metricsPort" -}}
{{- $port := int (index . 0).Values.metricsPort -}}
{{- $container := index . 1 -}}
{{- include "kubetx.replaceFlag" (list $container "--metrics-port" (list "--metrics-port" (toString $port))) -}}
{{- range $container.ports -}}
{{- if eq .name "metrics" -}}
{{- $_ := set . "containerPort" $port -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
A flag of manifests/deployment.yaml's args and the value after it, replaced
by the given args. Takes (list container flag args) and changes the
container in place; fails if the manifest no longer passes the flag.
*/}}
{{- define "kubetx.replaceFlag" -}}
{{- $container := index . 0 -}}
{{- $flag := index . 1 -}}
{{- $args := list -}}
{{- $skip := false -}}
{{- $found := false -}}
{{- range $container.args -}}
{{- if $skip -}}
{{- $skip = false -}}
{{- else if eq . $flag -}}
{{- $args = concat $args (index $ 2) -}}
{{- $skip = true -}}
{{- $found = true -}}
{{- else -}}
{{- $args = append $args . -}}
{{- end -}}
{{- end -}}
{{- if not $found -}}
{{- fail (printf "kubetx chart: manifests/deployment.yaml should pass %s" $flag) -}}
{{- end -}}
{{- $_ := set $container "args" $args -}}
{{- end -}}

{{/*
The audit sink (auditSink in values.yaml): `kubetx serve --audit-sink`,
which takes audit batches only from the client certificate that
apiserverClient names, as it does admission reviews.
manifests/components/audit-sink/ makes the same change for the kustomize
install. Takes the container and changes it in place.
*/}}
{{- define "kubetx.auditSink" -}}
{{- $_ := set . "args" (append .args "--audit-sink") -}}
{{- end -}}
