{{- define "pedia.name" -}}pedia{{- end }}

{{- define "pedia.fullname" -}}
{{- if contains "pedia" .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{ else }}{{ printf "%s-pedia" .Release.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "pedia.labels" -}}
app.kubernetes.io/name: pedia
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "pedia.selectorLabels" -}}
app.kubernetes.io/name: pedia
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "pedia.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}{{ default (include "pedia.fullname" .) .Values.serviceAccount.name }}{{ else }}{{ default "default" .Values.serviceAccount.name }}{{ end }}
{{- end }}

{{- define "pedia.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The storage flags both containers share. */}}
{{- define "pedia.storageArgs" -}}
{{- if eq .Values.storage.type "sqlite" }}
- --storage=sqlite:///data/pedia.db
{{- else }}
- --storage-config=/etc/pedia/storage/internalstorage-config.yaml
{{- end }}
{{- end }}

{{- define "pedia.storageEnv" -}}
{{- if and (ne .Values.storage.type "sqlite") .Values.storage.password.existingSecret }}
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.storage.password.existingSecret }}
      key: {{ .Values.storage.password.key }}
{{- end }}
{{- end }}

{{- define "pedia.storageMounts" -}}
{{- if eq .Values.storage.type "sqlite" }}
- name: data
  mountPath: /data
{{- else }}
- name: storage-config
  mountPath: /etc/pedia/storage
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "pedia.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Checks that fail the render with a message instead of installing something that cannot work. */}}
{{- define "pedia.validate" -}}
{{- if not (has .Values.storage.type (list "sqlite" "postgres" "mysql")) }}
{{- fail (printf "storage.type must be sqlite, postgres or mysql, not %q" .Values.storage.type) }}
{{- end }}
{{- if and (eq .Values.storage.type "sqlite") (gt (int .Values.replicas) 1) }}
{{- fail "replicas > 1 needs a SQL server: set storage.type to postgres or mysql (SQLite is one file on one volume)" }}
{{- end }}
{{- if and .Values.apiserver.tls.selfSigned (not .Values.apiserver.apiService.insecureSkipTLSVerify) }}
{{- fail "apiserver.tls.selfSigned needs apiserver.apiService.insecureSkipTLSVerify=true: the aggregator cannot verify a certificate pedia makes up at start" }}
{{- end }}
{{- if and (ne .Values.storage.type "sqlite") (not .Values.storage.host) }}
{{- fail (printf "storage.host is required for storage.type %s" .Values.storage.type) }}
{{- end }}
{{- end }}
