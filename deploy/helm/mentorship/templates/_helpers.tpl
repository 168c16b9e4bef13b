{{/* Names, labels and the image of one service. Most helpers take (dict "root" $ "name" $service). */}}

{{- define "mentorship.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mentorship.serviceName" -}}
{{- printf "%s-%s" (include "mentorship.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mentorship.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mentorship
{{- end -}}

{{- define "mentorship.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "mentorship.labels" -}}
{{ include "mentorship.commonLabels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "mentorship.image" -}}
{{- $img := .root.Values.image -}}
{{- printf "%s/%s/%s%s:%s" $img.registry $img.owner $img.namePrefix .name (default .root.Chart.AppVersion $img.tag) -}}
{{- end -}}

{{/* The Prometheus job label of a service (ServiceMonitor jobLabel); the alert rules match mentorship-.* */}}
{{- define "mentorship.job" -}}
{{- printf "mentorship-%s" .name -}}
{{- end -}}

{{/* Largest useful replica count of a consuming service: never above the partitions of its topics. */}}
{{- define "mentorship.maxConsumerReplicas" -}}
{{- min (int .Values.autoscaling.keda.maxReplicas) (int .Values.kafka.partitions) -}}
{{- end -}}

{{/* The service object merged over the defaults. */}}
{{- define "mentorship.svc" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.defaults) (deepCopy .svc)) -}}
{{- end -}}

{{/* The environment of one service (its ConfigMap): settings the README documents. */}}
{{- define "mentorship.settings" -}}
{{- $v := .root.Values -}}
{{- $settings := dict
  "SERVICE_NAME" .name
  "HTTP_HOST" "0.0.0.0"
  "HTTP_PORT" "8000"
  "KAFKA_BOOTSTRAP_SERVERS" $v.kafka.bootstrapServers
  "KAFKA_TOPIC_PREFIX" $v.kafka.topicPrefix
  "KAFKA_TOPIC_PARTITIONS" (toString $v.kafka.partitions)
  "KAFKA_REPLICATION_FACTOR" (toString $v.kafka.replicationFactor)
  "JWT_ISSUER" $v.identity.jwtIssuer -}}
{{- if $v.mongodb.database }}{{ $_ := set $settings "MONGODB_DATABASE" $v.mongodb.database }}{{ end -}}
{{- if $v.kafka.sasl.enabled -}}
{{- $_ := set $settings "KAFKA_SECURITY_PROTOCOL" $v.kafka.sasl.securityProtocol -}}
{{- $_ := set $settings "KAFKA_SASL_MECHANISM" $v.kafka.sasl.mechanism -}}
{{- end -}}
{{- if $v.otel.endpoint -}}
{{- $_ := set $settings "OTEL_EXPORTER_OTLP_ENDPOINT" $v.otel.endpoint -}}
{{- $_ := set $settings "OTEL_TRACES_SAMPLER" $v.otel.sampler -}}
{{- if $v.otel.samplerArg }}{{ $_ := set $settings "OTEL_TRACES_SAMPLER_ARG" (toString $v.otel.samplerArg) }}{{ end -}}
{{- end -}}
{{- if eq .name "notification" -}}
{{- $_ := set $settings "SMTP_HOST" $v.smtp.host -}}
{{- $_ := set $settings "SMTP_PORT" (toString $v.smtp.port) -}}
{{- $_ := set $settings "SMTP_STARTTLS" (toString $v.smtp.starttls) -}}
{{- $_ := set $settings "SMTP_IMPLICIT_TLS" (toString $v.smtp.implicitTls) -}}
{{- $_ := set $settings "SMTP_FROM" $v.smtp.from -}}
{{- $_ := set $settings "MESSAGE_ID_DOMAIN" $v.smtp.messageIdDomain -}}
{{- end -}}
{{- range $k, $val := $v.config }}{{ $_ := set $settings $k (toString $val) }}{{ end -}}
{{- range $k, $val := (index $v.services .name).env }}{{ $_ := set $settings $k (toString $val) }}{{ end -}}
{{- range $k, $val := $settings }}
{{ $k }}: {{ $val | quote }}
{{- end }}
{{- end -}}
