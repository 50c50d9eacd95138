{{/* Chart name, overridable. */}}
{{- define "o365.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: release-chart, unless the release name already contains the chart
name. Truncated to 63 characters because some Kubernetes name fields are
limited to that (DNS-1123).
*/}}
{{- define "o365.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "o365.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "o365.labels" -}}
helm.sh/chart: {{ include "o365.chart" . }}
{{ include "o365.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: job-worker
{{- end }}

{{/* Selector labels must never change between upgrades. */}}
{{- define "o365.selectorLabels" -}}
app.kubernetes.io/name: {{ include "o365.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "o365.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "o365.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "o365.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
Seconds of CONNECTOR_SHUTDOWN_GRACE when it is written with h/m/s units only
(e.g. 30s, 1m30s); empty for other forms (e.g. 500ms, 1.5m), which are not
checked.
*/}}
{{- define "o365.shutdownGraceSeconds" -}}
{{- $g := toString (default "30s" .Values.config.CONNECTOR_SHUTDOWN_GRACE) }}
{{- if regexMatch "^([0-9]+h)?([0-9]+m)?([0-9]+s)?$" $g }}
{{- $h := regexFind "[0-9]+h" $g | trimSuffix "h" | default "0" | atoi }}
{{- $m := regexFind "[0-9]+m" $g | trimSuffix "m" | default "0" | atoi }}
{{- $s := regexFind "[0-9]+s" $g | trimSuffix "s" | default "0" | atoi }}
{{- add (mul $h 3600) (mul $m 60) $s }}
{{- end }}
{{- end }}

{{/* Fails the render when the pod would be killed before the worker's own shutdown grace ends. */}}
{{- define "o365.validate" -}}
{{- $grace := include "o365.shutdownGraceSeconds" . }}
{{- if and $grace (le (int .Values.terminationGracePeriodSeconds) (int $grace)) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be larger than CONNECTOR_SHUTDOWN_GRACE (%s = %ss)" .Values.terminationGracePeriodSeconds .Values.config.CONNECTOR_SHUTDOWN_GRACE $grace) }}
{{- end }}
{{- with .Values.config.MANAGEMENT_ADDR }}
{{- $addr := toString . }}
{{- $port := int $.Values.service.port }}
{{- if or (not (regexMatch "^(0\\.0\\.0\\.0|\\[::\\])?:[0-9]+$" $addr)) (ne (regexFind "[0-9]+$" $addr | atoi) $port) }}
{{- fail (printf "config.MANAGEMENT_ADDR (%s) must listen on all interfaces at service.port (%[2]d), as :%[2]d, 0.0.0.0:%[2]d or [::]:%[2]d: the probes and the Service reach the pod's IP there; leave it empty to follow service.port" $addr $port) }}
{{- end }}
{{- end }}
{{- range .Values.extraEnv }}
{{- if eq (toString .name) "MANAGEMENT_ADDR" }}
{{- fail "set MANAGEMENT_ADDR as config.MANAGEMENT_ADDR, not in extraEnv: the chart sets it from service.port, and a second entry would silently win" }}
{{- end }}
{{- end }}
{{- if and .Values.secretsDir.enabled (not .Values.secretsDir.secretName) }}
{{- fail "secretsDir.secretName is required when secretsDir.enabled is true" }}
{{- end }}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (ne (toString .Values.podDisruptionBudget.minAvailable) "") (not (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable)) (ne (toString .Values.podDisruptionBudget.maxUnavailable) "") }}
{{- fail "set only one of podDisruptionBudget.minAvailable and podDisruptionBudget.maxUnavailable" }}
{{- end }}
{{- end }}
