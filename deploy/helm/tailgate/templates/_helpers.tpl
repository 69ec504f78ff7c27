{{- define "tailgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tailgate.fullname" -}}
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

{{/* Labels on every object; pass (dict "ctx" $ "component" "agent"). */}}
{{- define "tailgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{ include "tailgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: tailgate
{{- end }}

{{- define "tailgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tailgate.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* repository:tag, or repository@digest; the tag defaults to the chart's appVersion. */}}
{{- define "tailgate.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "tailgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tailgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tailgate.loaderServiceAccountName" -}}
{{- if .Values.loader.serviceAccount.create }}
{{- default (printf "%s-loader" (include "tailgate.fullname" .)) .Values.loader.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.loader.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tailgate.setupServiceAccountName" -}}
{{- if .Values.setup.serviceAccount.create }}
{{- default (printf "%s-setup" (include "tailgate.fullname" .)) .Values.setup.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.setup.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tailgate.priorityClassName" -}}
{{- if .Values.priorityClass.create }}
{{- default (printf "%s-node" (include "tailgate.fullname" .)) .Values.priorityClass.name }}
{{- else }}
{{- .Values.priorityClass.name }}
{{- end }}
{{- end }}

{{/* The rendered tailgate.yaml. */}}
{{- define "tailgate.config" -}}
{{- tpl (toYaml .Values.config) . }}
{{- end }}

{{/* The port of an address "host:port". */}}
{{- define "tailgate.port" -}}
{{- regexReplaceAll "^.*:([0-9]+)$" . "${1}" }}
{{- end }}

{{/* The metrics port, from config.metrics.listen. */}}
{{- define "tailgate.metricsPort" -}}
{{- include "tailgate.port" (default "0.0.0.0:2020" (dig "metrics" "listen" "" .Values.config)) }}
{{- end }}

{{/* The TCP port of the first forward input with a listen address, or "". */}}
{{- define "tailgate.forwardPort" -}}
{{- $port := "" }}
{{- range .Values.config.inputs }}
{{- if and (eq .type "forward") .listen (not $port) }}
{{- $port = include "tailgate.port" .listen }}
{{- end }}
{{- end }}
{{- $port }}
{{- end }}

{{/* The distinct directories of the forward inputs' unix sockets, one per line. */}}
{{- define "tailgate.socketDirs" -}}
{{- $dirs := list }}
{{- range .Values.config.inputs }}
{{- if and (eq .type "forward") .socket }}
{{- $dirs = append $dirs (dir .socket) }}
{{- end }}
{{- end }}
{{- range uniq $dirs }}
{{ . }}
{{- end }}
{{- end }}
