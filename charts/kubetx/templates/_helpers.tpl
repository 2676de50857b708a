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

{{/* The selector of the Deployment, PodDisruptionBudget and Service: as in manifests/, since a Deployment's selector never changes. */}}
{{- define "kubetx.selectorLabels" -}}
app.kubernetes.io/name: kubetx
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


{{/* Parts the three webhooks share; each takes a dict with ns, path and caBundle. */}}
{{- define "kubetx.clientConfig" -}}
clientConfig:
  service:
    name: kubetx
    namespace: {{ .ns }}
    path: {{ .path }}
    port: 443
  {{- if .caBundle }}
  caBundle: {{ .caBundle }}
  {{- end }}
{{- end }}

{{- define "kubetx.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: [kube-system, kube-public, kube-node-lease, {{ .ns }}]
{{- end }}

{{- define "kubetx.notKubetxItself" -}}
- name: not-kubetx-itself
  expression: request.userInfo.username != 'system:serviceaccount:{{ .ns }}:kubetx'
{{- end }}
