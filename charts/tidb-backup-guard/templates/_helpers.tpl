{{/* The chart name, or nameOverride. */}}
{{- define "tidb-backup-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 45 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: release and chart name. Truncated to 45 characters, leaving room for the
longest suffix the chart adds ("-selfsigned-issuer", 18) within the 63-character limit.
*/}}
{{- define "tidb-backup-guard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "tidb-backup-guard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "tidb-backup-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tidb-backup-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tidb-backup-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tidb-backup-guard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tidb-backup-guard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tidb-backup-guard.mutatingName" -}}
{{- printf "%s-mutating" (include "tidb-backup-guard.fullname" .) }}
{{- end }}

{{- define "tidb-backup-guard.validatingName" -}}
{{- printf "%s-validating" (include "tidb-backup-guard.fullname" .) }}
{{- end }}

{{/* The Secret holding the serving certificate, whatever fills it. */}}
{{- define "tidb-backup-guard.certSecretName" -}}
{{- if eq .Values.certs.mode "secret" }}
{{- required "certs.secret.name is required when certs.mode is secret" .Values.certs.secret.name }}
{{- else }}
{{- printf "%s-webhook-cert" (include "tidb-backup-guard.fullname" .) }}
{{- end }}
{{- end }}

{{- define "tidb-backup-guard.certificateName" -}}
{{- printf "%s-serving-cert" (include "tidb-backup-guard.fullname" .) }}
{{- end }}

{{- define "tidb-backup-guard.issuerName" -}}
{{- printf "%s-selfsigned-issuer" (include "tidb-backup-guard.fullname" .) }}
{{- end }}

{{- define "tidb-backup-guard.leaseName" -}}
{{- printf "%s-reconciler" (include "tidb-backup-guard.fullname" .) }}
{{- end }}

{{/*
The admission mode in effect: admission.mode, with auto resolved by what the cluster
serves (CEL where MutatingAdmissionPolicy v1 is, Kubernetes 1.36 and later). Only auto
consults the capabilities: a user who names cel has decided, and GitOps tools render
offline, where helm knows no API versions. On a cluster without the API, the apply of an
explicit cel fails with the API server's own error.
*/}}
{{- define "tidb-backup-guard.admissionMode" -}}
{{- if eq .Values.admission.mode "auto" }}
{{- if .Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy" }}cel{{ else }}webhook{{ end }}
{{- else if eq .Values.admission.mode "cel" }}cel
{{- else }}webhook
{{- end }}
{{- end }}

{{/* Whether the webhook server runs: admission is on and done by webhooks. */}}
{{- define "tidb-backup-guard.webhook" -}}
{{- if and .Values.components.webhook (eq (include "tidb-backup-guard.admissionMode" .) "webhook") }}true{{ end }}
{{- end }}

{{/* Whether admission is done by the API server's CEL policies. */}}
{{- define "tidb-backup-guard.cel" -}}
{{- if and .Values.components.webhook (eq (include "tidb-backup-guard.admissionMode" .) "cel") }}true{{ end }}
{{- end }}

{{/* The server's --components value. */}}
{{- define "tidb-backup-guard.components" -}}
{{- $c := list }}
{{- if include "tidb-backup-guard.webhook" . }}{{ $c = append $c "webhook" }}{{ end }}
{{- if .Values.components.reconciler }}{{ $c = append $c "reconciler" }}{{ end }}
{{- if not $c }}{{ fail "enable at least one of components.webhook and components.reconciler (in CEL mode the server runs only the reconciler)" }}{{ end }}
{{- join "," $c }}
{{- end }}

{{/* Whether the server itself manages the certificate (and needs RBAC for it). */}}
{{- define "tidb-backup-guard.selfSigned" -}}
{{- if and (include "tidb-backup-guard.webhook" .) (eq .Values.certs.mode "self-signed") }}true{{ end }}
{{- end }}

{{/* Whether the certificate is mounted from a Secret. */}}
{{- define "tidb-backup-guard.mountsCert" -}}
{{- if and (include "tidb-backup-guard.webhook" .) (ne .Values.certs.mode "self-signed") }}true{{ end }}
{{- end }}

{{/* A webhook's clientConfig: the Service, and in secret mode the given caBundle. */}}
{{- define "tidb-backup-guard.clientConfig" -}}
service:
  name: {{ include "tidb-backup-guard.fullname" .root }}
  namespace: {{ .root.Release.Namespace }}
  path: {{ .path }}
  port: 443
{{- if eq .root.Values.certs.mode "secret" }}
caBundle: {{ required "certs.secret.caBundle is required when certs.mode is secret" .root.Values.certs.secret.caBundle }}
{{- end }}
{{- end }}
