{{/*
A hook Job running one `signal-cli` command from the `signal` image with the database and Kafka settings
(no encryption key: these commands never open encrypted data). Parameters: root (the chart context), name,
command (list), weight (hook order: a lower weight finishes first).
*/}}
{{- define "signal.cliJob" -}}
{{- $root := .root -}}
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ printf "%s-%s" (include "signal.fullname" $root) .name | trunc 63 | trimSuffix "-" }}
  labels:
    {{- include "signal.labels" $root | nindent 4 }}
    app.kubernetes.io/name: {{ .name }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: {{ .weight | quote }}
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  backoffLimit: {{ $root.Values.migrations.backoffLimit }}
  activeDeadlineSeconds: {{ $root.Values.migrations.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "signal.labels" $root | nindent 8 }}
        app.kubernetes.io/name: {{ .name }}
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .name }}
          image: {{ include "signal.image" (dict "root" $root "name" "signal") | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: {{ toJson .command }}
          env:
            - name: NODE_ENV
              value: "production"
            - name: LOG_LEVEL
              value: {{ $root.Values.logLevel | quote }}
            - name: SIGNAL_NAMESPACE
              value: {{ $root.Values.signalNamespace | quote }}
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ required "database.urlSecret.name is required (a Secret holding the PostgreSQL URL)" $root.Values.database.urlSecret.name | quote }}
                  key: {{ $root.Values.database.urlSecret.key | quote }}
            - name: DB_MAX_CONNS
              value: "2"
            - name: BUS
              value: {{ $root.Values.bus | quote }}
            {{- include "signal.kafkaEnv" $root | nindent 12 }}
            {{- with $root.Values.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          resources:
            {{- toYaml $root.Values.migrations.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if $root.Values.database.caSecret.name }}
            - name: database-ca
              mountPath: /etc/signal/database-ca
              readOnly: true
            {{- end }}
            {{- if $root.Values.kafka.tls.caSecret.name }}
            - name: kafka-ca
              mountPath: /etc/signal/kafka-ca
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $root.Values.tmpSizeLimit | quote }}
        {{- if $root.Values.database.caSecret.name }}
        - name: database-ca
          secret:
            secretName: {{ $root.Values.database.caSecret.name | quote }}
        {{- end }}
        {{- if $root.Values.kafka.tls.caSecret.name }}
        - name: kafka-ca
          secret:
            secretName: {{ $root.Values.kafka.tls.caSecret.name | quote }}
        {{- end }}
{{- end -}}
