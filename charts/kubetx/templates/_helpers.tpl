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
The audit sink (auditSink in values.yaml): `kubetx serve --audit-sink`,
which takes audit batches only from a client certificate signed by the CA
in auditSink.clientCA (key ca.crt, mounted read-only) and named in
auditSink.apiserverClients. manifests/components/audit-sink/ makes the same
change for the kustomize install. Takes (list $ podSpec container) and
changes those two in place.
*/}}
{{- define "kubetx.auditSink" -}}
{{- $sink := (index . 0).Values.auditSink -}}
{{- $pod := index . 1 -}}
{{- $container := index . 2 -}}
{{- $dir := "/etc/kubetx/apiserver-ca" -}}
{{- $items := list (dict "key" "ca.crt" "path" "ca.crt") -}}
{{- $volume := dict "name" "apiserver-ca" -}}
{{- if eq $sink.clientCA.kind "ConfigMap" -}}
{{- $_ := set $volume "configMap" (dict "name" $sink.clientCA.name "items" $items) -}}
{{- else if eq $sink.clientCA.kind "Secret" -}}
{{- $_ := set $volume "secret" (dict "secretName" $sink.clientCA.name "items" $items) -}}
{{- else -}}
{{- fail (printf "kubetx: auditSink.clientCA.kind must be ConfigMap or Secret, got %q" $sink.clientCA.kind) -}}
{{- end -}}
{{- $flags := list "--audit-sink" "--client-ca" (printf "%s/ca.crt" $dir) "--apiserver-client" (join "," $sink.apiserverClients) -}}
{{- $_ := set $container "args" (concat $container.args $flags) -}}
{{- $_ = set $container "volumeMounts" (append $container.volumeMounts (dict "name" "apiserver-ca" "mountPath" $dir "readOnly" true)) -}}
{{- $_ = set $pod "volumes" (append $pod.volumes $volume) -}}
{{- end -}}
