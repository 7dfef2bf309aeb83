{{/* Egress rules shared by the NetworkPolicies (networkpolicy.yaml). */}}
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
