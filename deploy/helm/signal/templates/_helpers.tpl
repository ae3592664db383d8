{{/*
Helpers. The templates stay within a small subset of Go templates and Sprig (include, if/else, range,
with, variables, quote, toYaml, nindent, default, required, fail, b64enc, sha256sum, printf, trunc,
trimSuffix, regexMatch, eq/ne/and/or/not, index, hasKey, toString) so that test/deploy can render them
without a helm binary.
*/}}

{{- define "signal.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; objects of one service add signal.selectorLabels (name + instance). */}}
{{- define "signal.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
app.kubernetes.io/part-of: signal
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Labels of release-wide objects (secrets, service account, certificate). */}}
{{- define "signal.labels" -}}
{{ include "signal.commonLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{/* Selector labels of one service; call with (dict "root" $ "name" $name). */}}
{{- define "signal.selectorLabels" -}}
app.kubernetes.io/name: {{ .name | quote }}
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
{{- end -}}

{{- define "signal.image" -}}
{{- printf "%s%s:%s" .root.Values.image.repositoryPrefix .name (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{- define "signal.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "signal.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "signal.encryptionSecretName" -}}
{{- if .Values.encryption.existingSecret -}}
{{- .Values.encryption.existingSecret -}}
{{- else -}}
{{- printf "%s-encryption" (include "signal.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "signal.jwtSecretName" -}}
{{- if .Values.jwt.existingSecret -}}
{{- .Values.jwt.existingSecret -}}
{{- else -}}
{{- printf "%s-jwt" (include "signal.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
Digest of the chart-managed secrets, as a pod annotation: a new key (or a removed previous key) changes
the pod template, so `helm upgrade --set encryption.key=… --set encryption.previousKey=…` rolls every
Deployment. It is SHA-256 over 256-bit random key material: it identifies a change, it reveals nothing.
*/}}
{{- define "signal.secretsChecksum" -}}
{{- printf "%s|%s|%s" (toString (default "" .Values.encryption.key)) (toString (default "" .Values.encryption.previousKey)) (toString (default "" .Values.jwt.secret)) | sha256sum -}}
{{- end -}}

{{/* Checks values that would otherwise fail only inside the pods. */}}
{{- define "signal.validate" -}}
{{- $key := toString (default "" .Values.encryption.key) -}}
{{- $previous := toString (default "" .Values.encryption.previousKey) -}}
{{- if and (ne $key "") (not (regexMatch "^[0-9a-fA-F]{64}$" $key)) -}}
{{- fail "encryption.key must be exactly 64 hexadecimal characters (generate one with: pnpm signal-cli generate-key)" -}}
{{- end -}}
{{- if and (ne $previous "") (not (regexMatch "^[0-9a-fA-F]{64}$" $previous)) -}}
{{- fail "encryption.previousKey must be exactly 64 hexadecimal characters (the key being rotated out)" -}}
{{- end -}}
{{- if and (ne $previous "") (eq $previous $key) -}}
{{- fail "encryption.previousKey must differ from encryption.key (set it to the old key, not the new one)" -}}
{{- end -}}
{{- if and (ne $previous "") (eq $key "") (not .Values.encryption.existingSecret) -}}
{{- fail "encryption.previousKey is set but encryption.key is not: set encryption.key to the new key" -}}
{{- end -}}
{{- if and (eq .Values.encryption.provider "local") (eq $key "") (not .Values.encryption.existingSecret) -}}
{{- fail "encryption.key is required with the local provider (64 hex characters: pnpm signal-cli generate-key), or set encryption.existingSecret" -}}
{{- end -}}
{{- if and (eq .Values.bus "kafka") (not .Values.kafka.brokers) (not .Values.kafka.brokersSecret.name) -}}
{{- fail "kafka.brokers (host:port,…) or kafka.brokersSecret.name is required when bus is kafka" -}}
{{- end -}}
{{- if and .Values.kafka.sasl.mechanism (not .Values.kafka.sasl.existingSecret) -}}
{{- fail "kafka.sasl.existingSecret is required when kafka.sasl.mechanism is set (a Secret with the SASL username and password)" -}}
{{- end -}}
{{- if and (eq .Values.kafka.sasl.mechanism "plain") (not .Values.kafka.tls.enabled) -}}
{{- fail "kafka.sasl.mechanism plain sends the password in clear: set kafka.tls.enabled=true, or use scram-sha-256 or scram-sha-512" -}}
{{- end -}}
{{- if not (or (eq .Values.bus "kafka") (eq .Values.bus "postgres")) -}}
{{- fail "bus must be kafka or postgres" -}}
{{- end -}}
{{- end -}}

{{/* KAFKA_*: brokers from the value or a Secret, TLS and its CA, SASL from a Secret, topic sizing. */}}
{{- define "signal.kafkaEnv" -}}
{{- if .Values.kafka.brokersSecret.name }}
- name: KAFKA_BROKERS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.brokersSecret.name | quote }}
      key: {{ .Values.kafka.brokersSecret.key | quote }}
{{- else if .Values.kafka.brokers }}
- name: KAFKA_BROKERS
  value: {{ .Values.kafka.brokers | quote }}
{{- end }}
- name: KAFKA_TLS_ENABLED
  value: {{ .Values.kafka.tls.enabled | toString | quote }}
{{- if .Values.kafka.tls.caSecret.name }}
- name: KAFKA_TLS_CA_CERT_PATH
  value: {{ printf "/etc/signal/kafka-ca/%s" .Values.kafka.tls.caSecret.key | quote }}
{{- end }}
{{- if .Values.kafka.sasl.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret | quote }}
      key: {{ .Values.kafka.sasl.usernameKey | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret | quote }}
      key: {{ .Values.kafka.sasl.passwordKey | quote }}
{{- end }}
{{- with .Values.kafka.clientId }}
- name: KAFKA_CLIENT_ID
  value: {{ . | quote }}
{{- end }}
- name: KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | toString | quote }}
- name: KAFKA_RAW_EVENTS_PARTITIONS
  value: {{ .Values.kafka.partitions.rawEvents | toString | quote }}
- name: KAFKA_DELIVERY_PARTITIONS
  value: {{ .Values.kafka.partitions.delivery | toString | quote }}
- name: KAFKA_DLQ_PARTITIONS
  value: {{ .Values.kafka.partitions.dlq | toString | quote }}
{{- end -}}

{{/* Environment every service container gets. */}}
{{- define "signal.commonEnv" -}}
- name: NODE_ENV
  value: "production"
- name: PORT
  value: "8080"
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: SIGNAL_NAMESPACE
  value: {{ .Values.signalNamespace | quote }}
{{- if .Values.metrics.tokenSecret.name }}
- name: METRICS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.metrics.tokenSecret.name | quote }}
      key: {{ .Values.metrics.tokenSecret.key | quote }}
{{- end }}
- name: ENCRYPTION_PROVIDER
  value: {{ .Values.encryption.provider | quote }}
- name: REQUIRE_ENCRYPTION
  value: {{ .Values.encryption.requireEncryption | toString | quote }}
- name: ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "signal.encryptionSecretName" . | quote }}
      key: encryption-key
      optional: {{ ne .Values.encryption.provider "local" }}
- name: ENCRYPTION_KEY_PREVIOUS
  valueFrom:
    secretKeyRef:
      name: {{ include "signal.encryptionSecretName" . | quote }}
      key: encryption-key-previous
      optional: true
{{- with .Values.encryption.gcpKms.keyResourceName }}
- name: ENCRYPTION_GCP_KMS_KEY_RESOURCE_NAME
  value: {{ . | quote }}
{{- end }}
{{- with .Values.encryption.awsKms.keyId }}
- name: ENCRYPTION_AWS_KMS_KEY_ID
  value: {{ . | quote }}
{{- end }}
{{- with .Values.encryption.azureKeyVault.keyId }}
- name: ENCRYPTION_AZURE_KEY_ID
  value: {{ . | quote }}
{{- end }}
{{- if eq .Values.encryption.provider "hashicorp-vault" }}
- name: VAULT_ADDR
  value: {{ required "encryption.vault.address is required with the hashicorp-vault provider" .Values.encryption.vault.address | quote }}
- name: ENCRYPTION_VAULT_KEY
  value: {{ required "encryption.vault.key is required with the hashicorp-vault provider" .Values.encryption.vault.key | quote }}
- name: ENCRYPTION_VAULT_MOUNT
  value: {{ .Values.encryption.vault.mount | quote }}
{{- with .Values.encryption.vault.namespace }}
- name: VAULT_NAMESPACE
  value: {{ . | quote }}
{{- end }}
{{- if .Values.encryption.vault.tokenSecret.name }}
- name: VAULT_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.encryption.vault.tokenSecret.name | quote }}
      key: {{ .Values.encryption.vault.tokenSecret.key | quote }}
{{- end }}
{{- if .Values.encryption.vault.caSecret.name }}
- name: VAULT_CACERT
  value: {{ printf "/etc/signal/vault-ca/%s" .Values.encryption.vault.caSecret.key | quote }}
{{- end }}
{{- end }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.urlSecret.name is required (a Secret holding the PostgreSQL URL)" .Values.database.urlSecret.name | quote }}
      key: {{ .Values.database.urlSecret.key | quote }}
- name: DB_MAX_CONNS
  value: {{ .Values.database.maxConnections | toString | quote }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "redis.urlSecret.name is required (a Secret holding the Redis URL)" .Values.redis.urlSecret.name | quote }}
      key: {{ .Values.redis.urlSecret.key | quote }}
- name: REDIS_TLS_ENABLED
  value: {{ .Values.redis.tls.enabled | toString | quote }}
{{- if .Values.redis.tls.caSecret.name }}
- name: REDIS_TLS_CA_CERT_PATH
  value: {{ printf "/etc/signal/redis-ca/%s" .Values.redis.tls.caSecret.key | quote }}
{{- end }}
- name: BUS
  value: {{ .Values.bus | quote }}
{{- include "signal.kafkaEnv" . }}
- name: TLS_MIN_VERSION
  value: {{ .Values.tls.minVersion | toString | quote }}
{{- if .Values.tls.enabled }}
- name: TLS_CERT_PATH
  value: "/etc/signal/tls/tls.crt"
- name: TLS_KEY_PATH
  value: "/etc/signal/tls/tls.key"
{{- end }}
{{- end -}}

{{/*
Secret volumes. Whole-Secret mounts (never subPath): the kubelet swaps the files atomically when a Secret
changes, and the services watch them (a subPath mount would never see a renewed certificate).
*/}}
{{- define "signal.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/signal/tls
  readOnly: true
{{- end }}
{{- if .Values.database.caSecret.name }}
- name: database-ca
  mountPath: /etc/signal/database-ca
  readOnly: true
{{- end }}
{{- if .Values.redis.tls.caSecret.name }}
- name: redis-ca
  mountPath: /etc/signal/redis-ca
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/signal/kafka-ca
  readOnly: true
{{- end }}
{{- if and (eq .Values.encryption.provider "hashicorp-vault") .Values.encryption.vault.caSecret.name }}
- name: vault-ca
  mountPath: /etc/signal/vault-ca
  readOnly: true
{{- end }}
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "signal.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit | quote }}
{{- if .Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName | quote }}
    defaultMode: 288 # 0440: owner and group (fsGroup) read
{{- end }}
{{- if .Values.database.caSecret.name }}
- name: database-ca
  secret:
    secretName: {{ .Values.database.caSecret.name | quote }}
{{- end }}
{{- if .Values.redis.tls.caSecret.name }}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.tls.caSecret.name | quote }}
{{- end }}
{{- if .Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret.name | quote }}
{{- end }}
{{- if and (eq .Values.encryption.provider "hashicorp-vault") .Values.encryption.vault.caSecret.name }}
- name: vault-ca
  secret:
    secretName: {{ .Values.encryption.vault.caSecret.name | quote }}
{{- end }}
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "signal.scheme" -}}
{{- if .Values.tls.enabled }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{- define "signal.portName" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end -}}
{{- end -}}
