{{/* Rules shared by the NetworkPolicies (networkpolicy.yaml). */}}

{{- /*
Peers of the api's HTTP port. Ingest and reads are served on that one port,
so a NetworkPolicy cannot tell them apart: the port is open to the Ingress
controller (which routes only the ingest paths, ingress.yaml), to the
release's own namespace (the helm test pod, in-namespace clients), to the
namespaces allowed to query (api.networkPolicy.queryNamespaces) and to
networkPolicy.apiIngressFrom; to nothing else. Namespaces are matched by the
kubernetes.io/metadata.name label Kubernetes sets on every namespace.
*/}}
{{- define "analytics.api.httpFrom" -}}
{{- $anp := .Values.api.networkPolicy }}
{{- range $anp.ingressControllerNamespaces }}
# The Ingress controller.
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ . | quote }}
{{- end }}
# The release's own namespace.
- podSelector: {}
{{- range without (uniq $anp.queryNamespaces) (include "analytics.namespace" .) }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ . | quote }}
{{- end }}
{{- with .Values.networkPolicy.apiIngressFrom }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- define "analytics.egress.dns" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}
{{- define "analytics.egress.postgres" -}}
{{- if .Values.postgresql.enabled }}
- to:
    - podSelector:
        matchLabels:
          cnpg.io/cluster: {{ include "analytics.postgresql.name" . }}
  ports:
    - port: 5432
      protocol: TCP
{{- else }}
# External database: its address is unknown to the chart, so only the port is restricted.
- ports:
    - port: {{ .Values.externalDatabase.port }}
      protocol: TCP
{{- end }}
{{- end }}
{{- define "analytics.egress.kafka" -}}
{{- if .Values.kafka.enabled }}
- to:
    - podSelector:
        matchLabels:
          strimzi.io/cluster: {{ include "analytics.kafka.name" . }}
  ports:
    - port: {{ .Values.kafka.listener.port }}
      protocol: TCP
{{- else }}
# External brokers: allow their ports (bootstrap and advertised) to any address.
- ports:
    {{- $ports := list }}
    {{- range splitList "," .Values.externalKafka.brokers }}
    {{- $ports = append $ports (last (splitList ":" (trim .))) }}
    {{- end }}
    {{- range uniq $ports }}
    - port: {{ int . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end }}
