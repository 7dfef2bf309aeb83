{{/* Names ---------------------------------------------------------------- */}}

{{- define "analytics.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated at 63 characters (the DNS label limit);
a release name that already contains the chart name is used as is.
*/}}
{{- define "analytics.fullname" -}}
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

{{- define "analytics.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "analytics.namespace" -}}
{{- .Release.Namespace }}
{{- end }}

{{/* Component names: suffixes kept short so that fullname + suffix stays under 63. */}}
{{- define "analytics.api.fullname" -}}
{{- printf "%s-api" (include "analytics.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "analytics.processor.fullname" -}}
{{- printf "%s-processor" (include "analytics.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- define "analytics.migration.fullname" -}}
{{- printf "%s-migrate" (include "analytics.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "analytics.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "analytics.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "analytics.kafka.name" -}}
{{- default (printf "%s-kafka" (include "analytics.fullname" .)) .Values.kafka.name | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "analytics.kafka.userName" -}}
{{- default (include "analytics.fullname" .) .Values.kafka.user.name }}
{{- end }}

{{- define "analytics.postgresql.name" -}}
{{- default (printf "%s-pg" (include "analytics.fullname" .)) .Values.postgresql.name | trunc 50 | trimSuffix "-" }}
{{- end }}

{{/* Labels ---------------------------------------------------------------- */}}

{{- define "analytics.labels" -}}
helm.sh/chart: {{ include "analytics.chart" . }}
{{ include "analytics.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: analytics
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "analytics.selectorLabels" -}}
app.kubernetes.io/name: {{ include "analytics.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels for one component: call with (dict "ctx" $ "component" "api"). */}}
{{- define "analytics.componentLabels" -}}
{{ include "analytics.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "analytics.componentSelectorLabels" -}}
{{ include "analytics.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Image ----------------------------------------------------------------- */}}

{{- define "analytics.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Connections ----------------------------------------------------------- */}}

{{- define "analytics.validate" -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.externalDatabase.existingSecret) }}
{{- fail "postgresql.enabled is false: set externalDatabase.existingSecret (a Secret whose key externalDatabase.urlKey holds the postgres:// URL)" }}
{{- end }}
{{- if and (not .Values.kafka.enabled) (not .Values.externalKafka.brokers) }}
{{- fail "kafka.enabled is false: set externalKafka.brokers (host:port,...)" }}
{{- end }}
{{- if and (not .Values.kafka.enabled) (hasPrefix "sasl" .Values.externalKafka.securityProtocol) (not .Values.externalKafka.sasl.existingSecret) }}
{{- fail "externalKafka.securityProtocol uses SASL: set externalKafka.sasl.username and externalKafka.sasl.existingSecret" }}
{{- end }}
{{- /* The api refuses to start otherwise; say so at install time instead of in a crash loop. */}}
{{- $ingestMs := 5000 }}
{{- range .Values.api.extraEnv }}
{{- if and (eq .name "INGEST_TIMEOUT_MS") (hasKey . "value") }}
{{- $ingestMs = int64 .value }}
{{- end }}
{{- end }}
{{- if le (mul (int64 .Values.api.http.requestTimeoutSeconds) 1000) (int64 $ingestMs) }}
{{- fail (printf "api.http.requestTimeoutSeconds (%d) must be longer than INGEST_TIMEOUT_MS (%d ms)" (int64 .Values.api.http.requestTimeoutSeconds) (int64 $ingestMs)) }}
{{- end }}
{{- /* Reads always need a key: READ_AUTH=open would serve every site's
       statistics (and /api/admin) to anyone who reaches the api. The chart
       sets READ_AUTH=keys and accepts nothing else through extraEnv. */}}
{{- range .Values.api.extraEnv }}
{{- if eq .name "READ_AUTH" }}
{{- if not (and (hasKey . "value") (eq (lower (trim (toString .value))) "keys")) }}
{{- fail "api.extraEnv sets READ_AUTH to something other than \"keys\": the chart never serves reads without a key (READ_AUTH=open is for an api only its own machine can reach). Give readers keys instead (analytics-admin keys create --scope read, or a shared link)." }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The paths the Ingress routes to the api: the ingest endpoints only (every one
matched exactly); stats, the dashboard and /api/admin stay inside the cluster.
One path a line; a tracker endpoint is added here.
*/}}
{{- define "analytics.ingestPaths" -}}
- /events
- /events/batch
{{- end }}

{{- define "analytics.kafka.brokers" -}}
{{- if .Values.kafka.enabled }}
{{- printf "%s-kafka-bootstrap:%d" (include "analytics.kafka.name" .) (int .Values.kafka.listener.port) }}
{{- else }}
{{- .Values.externalKafka.brokers }}
{{- end }}
{{- end }}

{{/* KAFKA_SECURITY_PROTOCOL as librdkafka spells it. */}}
{{- define "analytics.kafka.securityProtocol" -}}
{{- if .Values.kafka.enabled }}
{{- $sasl := eq .Values.kafka.listener.authentication "scram-sha-512" }}
{{- if and $sasl .Values.kafka.listener.tls }}sasl_ssl
{{- else if $sasl }}sasl_plaintext
{{- else if .Values.kafka.listener.tls }}ssl
{{- else }}plaintext
{{- end }}
{{- else }}
{{- .Values.externalKafka.securityProtocol }}
{{- end }}
{{- end }}

{{- define "analytics.kafka.sasl" -}}
{{- if hasPrefix "sasl" (include "analytics.kafka.securityProtocol" .) }}true{{ end }}
{{- end }}

{{/* Secret (name, key) holding the SASL password. */}}
{{- define "analytics.kafka.saslSecretName" -}}
{{- if .Values.kafka.enabled }}{{ include "analytics.kafka.userName" . }}{{ else }}{{ .Values.externalKafka.sasl.existingSecret }}{{ end }}
{{- end }}
{{- define "analytics.kafka.saslSecretKey" -}}
{{- if .Values.kafka.enabled }}password{{ else }}{{ .Values.externalKafka.sasl.passwordKey }}{{ end }}
{{- end }}

{{/* Secret (name, key) holding the CA PEM, empty when the system CAs are used. */}}
{{- define "analytics.kafka.caSecretName" -}}
{{- if .Values.kafka.enabled }}
{{- if .Values.kafka.listener.tls }}{{ include "analytics.kafka.name" . }}-cluster-ca-cert{{ end }}
{{- else if hasSuffix "ssl" .Values.externalKafka.securityProtocol }}
{{- .Values.externalKafka.tls.caSecret }}
{{- end }}
{{- end }}
{{- define "analytics.kafka.caSecretKey" -}}
{{- if .Values.kafka.enabled }}ca.crt{{ else }}{{ .Values.externalKafka.tls.caKey }}{{ end }}
{{- end }}

{{- define "analytics.kafka.caPath" -}}
/etc/analytics/kafka-ca/ca.crt
{{- end }}

{{/* DATABASE_URL: the CloudNativePG app Secret's full URI, or the user's Secret. */}}
{{- define "analytics.databaseUrlEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.postgresql.enabled }}
      name: {{ include "analytics.postgresql.name" . }}-app
      key: uri
      {{- else }}
      name: {{ .Values.externalDatabase.existingSecret }}
      key: {{ .Values.externalDatabase.urlKey }}
      {{- end }}
{{- end }}

{{/* Environment shared by api and processor: secrets by reference, the rest from the ConfigMap. */}}
{{- define "analytics.commonEnv" -}}
{{ include "analytics.databaseUrlEnv" . }}
{{- if include "analytics.kafka.sasl" . }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "analytics.kafka.saslSecretName" . }}
      key: {{ include "analytics.kafka.saslSecretKey" . }}
{{- end }}
{{- end }}

{{/*
The api's limits, timeouts and rates (api.trustedProxies, api.http, api.rateLimit, ...).
In the Deployment rather than the shared ConfigMap: they are the api's alone, and
a change edits the pod template, which rolls the pods as the checksum does.
*/}}
{{- define "analytics.api.limitsEnv" -}}
{{- $a := .Values.api }}
- name: TRUSTED_PROXIES
  value: {{ $a.trustedProxies | quote }}
- name: HTTP_MAX_CONNECTIONS
  value: {{ $a.http.maxConnections | int64 | quote }}
- name: HTTP_HEADER_TIMEOUT_SECONDS
  value: {{ $a.http.headerTimeoutSeconds | int64 | quote }}
- name: HTTP_BODY_TIMEOUT_SECONDS
  value: {{ $a.http.bodyTimeoutSeconds | int64 | quote }}
- name: HTTP_REQUEST_TIMEOUT_SECONDS
  value: {{ $a.http.requestTimeoutSeconds | int64 | quote }}
- name: HTTP_MAX_IN_FLIGHT
  value: {{ $a.http.maxInFlight | int64 | quote }}
- name: RATE_LIMIT_ADDRESS_PER_SECOND
  value: {{ $a.rateLimit.addressPerSecond | int64 | quote }}
- name: RATE_LIMIT_ADDRESS_BURST
  value: {{ $a.rateLimit.addressBurst | int64 | quote }}
- name: RATE_LIMIT_SITE_EVENTS_PER_SECOND
  value: {{ $a.rateLimit.siteEventsPerSecond | int64 | quote }}
- name: RATE_LIMIT_SITE_BURST
  value: {{ $a.rateLimit.siteBurst | int64 | quote }}
- name: EVENT_MAX_AGE_DAYS
  value: {{ $a.eventMaxAgeDays | int64 | quote }}
- name: KAFKA_QUEUE_KBYTES
  value: {{ $a.kafkaQueueKbytes | int64 | quote }}
{{- end }}

{{/* The processor's byte bounds (processor.batchMaxBytes, processor.kafkaFetchMaxKbytes). */}}
{{- define "analytics.processor.limitsEnv" -}}
- name: BATCH_MAX_BYTES
  value: {{ .Values.processor.batchMaxBytes | int64 | quote }}
- name: KAFKA_FETCH_MAX_KBYTES
  value: {{ .Values.processor.kafkaFetchMaxKbytes | int64 | quote }}
{{- end }}

{{/* Retention by age, run by the processor's maintenance (processor.retentionDays, .retentionRollups). */}}
{{- define "analytics.processor.retentionEnv" -}}
- name: RETENTION_DAYS
  value: {{ .Values.processor.retentionDays | int64 | quote }}
- name: RETENTION_ROLLUPS
  value: {{ .Values.processor.retentionRollups | quote }}
{{- end }}

{{/* Secret (name, key) holding SESSION_SECRET: the operator's, or the chart's (secret.yaml). */}}
{{- define "analytics.sessionSecret.name" -}}
{{- .Values.api.sessionSecret.existingSecret | default (printf "%s-session" (include "analytics.fullname" .) | trunc 63 | trimSuffix "-") }}
{{- end }}
{{- define "analytics.sessionSecret.key" -}}
{{- if .Values.api.sessionSecret.existingSecret }}{{ .Values.api.sessionSecret.key }}{{ else }}session-secret{{ end }}
{{- end }}

{{/*
Who may do what (api/src/auth.rs). READ_AUTH is fixed to keys: the binary's
default off loopback, set here so that it can never be anything else (see
analytics.validate for extraEnv). SESSION_SECRET comes from a Secret by
reference, the same in every replica, so a dashboard session holds on
whichever pod a request lands.
*/}}
{{- define "analytics.api.accessEnv" -}}
{{- $a := .Values.api }}
- name: READ_AUTH
  value: "keys"
- name: INGEST_AUTH
  value: {{ $a.ingestAuth | quote }}
- name: COOKIE_SECURE
  value: {{ $a.cookieSecure | quote }}
- name: KEY_CACHE_SECONDS
  value: {{ $a.keyCacheSeconds | int64 | quote }}
- name: QUERY_CACHE_MB
  value: {{ $a.queryCacheMB | int64 | quote }}
- name: SESSION_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "analytics.sessionSecret.name" . }}
      key: {{ include "analytics.sessionSecret.key" . }}
{{- end }}

{{/* Volumes every pod mounts: /tmp (the root fs is read-only) and the Kafka CA if any. */}}
{{- define "analytics.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- with (include "analytics.kafka.caSecretName" .) }}
- name: kafka-ca
  secret:
    secretName: {{ . }}
    items:
      - key: {{ include "analytics.kafka.caSecretKey" $ }}
        path: ca.crt
{{- end }}
{{- end }}

{{- define "analytics.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if include "analytics.kafka.caSecretName" . }}
- name: kafka-ca
  mountPath: /etc/analytics/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{/*
checkov skips, one annotation per check, each with its reason. Call with
(dict "ids" (list ...) "digest" <image digest or "">) naming checks from the set below;
CKV_K8S_43 (image digest) is dropped when the image is pinned by digest.
*/}}
{{- define "analytics.checkovSkips" -}}
{{- $reasons := dict
  "CKV_K8S_15" "IfNotPresent is deliberate: tags are immutable releases and image.digest pins an exact image; Always adds a registry round-trip to every start"
  "CKV_K8S_43" "the image is pinned by tag by default; set image.digest to pin by digest"
  "CKV_K8S_35" "the binaries read DATABASE_URL, KAFKA_SASL_PASSWORD and SESSION_SECRET from the environment (the runtime contract); they come from Secrets by reference, never inline"
  "CKV_K8S_8" "a run-to-completion hook has no long-lived process to probe"
  "CKV_K8S_9" "a run-to-completion hook has no long-lived process to probe"
-}}
{{- $ids := .ids }}
{{- if .digest }}
{{- $ids = without $ids "CKV_K8S_43" }}
{{- end }}
{{- range $i, $id := $ids }}
checkov.io/skip{{ add1 $i }}: {{ printf "%s=%s" $id (get $reasons $id) | quote }}
{{- end }}
{{- end }}
