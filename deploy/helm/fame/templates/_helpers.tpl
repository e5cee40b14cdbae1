{{/* Names. */}}
{{- define "fame.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "fame.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fame.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fame.image" -}}
{{ printf "%s:%s" .Values.image.repository (toString .Values.image.tag) }}
{{- end -}}

{{/* The profile, checked. */}}
{{- define "fame.profile" -}}
{{- $p := .Values.profile -}}
{{- if not (has $p (list "open" "overlay" "direct" "strict")) -}}
{{- fail (printf "profile %q: want open, overlay, direct or strict" $p) -}}
{{- end -}}
{{- $p -}}
{{- end -}}

{{/* Whether an admission service runs: "auto" follows the profile. */}}
{{- define "fame.oauth2.on" -}}
{{- $p := include "fame.profile" . -}}
{{- if eq (toString .Values.oauth2.enabled) "auto" -}}{{ if has $p (list "direct" "strict") }}true{{ end }}{{- else if .Values.oauth2.enabled -}}true{{- end -}}
{{- end -}}
{{- define "fame.welcome.on" -}}
{{- $p := include "fame.profile" . -}}
{{- if eq (toString .Values.welcome.enabled) "auto" -}}{{ if eq $p "strict" }}true{{ end }}{{- else if .Values.welcome.enabled -}}true{{- end -}}
{{- end -}}
{{- define "fame.ca.on" -}}
{{- $p := include "fame.profile" . -}}
{{- if eq (toString .Values.ca.enabled) "auto" -}}{{ if eq $p "strict" }}true{{ end }}{{- else if .Values.ca.enabled -}}true{{- end -}}
{{- end -}}

{{/* URL schemes: TLS on every listener when tls.existingSecret is set. */}}
{{- define "fame.http" -}}{{ if .Values.tls.existingSecret }}https{{ else }}http{{ end }}{{- end -}}
{{- define "fame.ws" -}}{{ if .Values.tls.existingSecret }}wss{{ else }}ws{{ end }}{{- end -}}
{{- define "fame.probeScheme" -}}{{ if .Values.tls.existingSecret }}HTTPS{{ else }}HTTP{{ end }}{{- end -}}

{{- define "fame.sentinel.nodeId" -}}
{{- default (include "fame.fullname" .) .Values.sentinel.nodeId -}}
{{- end -}}
{{- define "fame.sentinel.host" -}}{{ include "fame.fullname" . }}-sentinel{{- end -}}
{{- define "fame.attachURL" -}}
{{ include "fame.ws" . }}://{{ include "fame.sentinel.host" . }}:{{ .Values.sentinel.service.port }}/fame/v1/attach/ws/downstream
{{- end -}}
{{- define "fame.oauth2.url" -}}{{ include "fame.http" . }}://{{ include "fame.fullname" . }}-oauth2:{{ .Values.oauth2.port }}{{- end -}}
{{- define "fame.welcome.url" -}}{{ include "fame.http" . }}://{{ include "fame.fullname" . }}-welcome:{{ .Values.welcome.port }}{{- end -}}
{{- define "fame.ca.url" -}}{{ include "fame.http" . }}://{{ include "fame.fullname" . }}-ca:{{ .Values.ca.port }}{{- end -}}
{{- define "fame.welcome.issuer" -}}https://welcome/fame/welcome{{- end -}}

{{- define "fame.adminSecret" -}}{{ default (printf "%s-admin" (include "fame.fullname" .)) .Values.adminToken.existingSecret }}{{- end -}}
{{- define "fame.credSecret" -}}{{ default (printf "%s-credentials" (include "fame.fullname" .)) .Values.credentials.existingSecret }}{{- end -}}
{{- define "fame.hasAdmin" -}}{{ if or .Values.adminToken.value .Values.adminToken.existingSecret }}true{{ end }}{{- end -}}

{{/* The default grants: the math replicas may attach as <fullname>-math-* and serve the pool. */}}
{{- define "fame.grants" -}}
sub={{ .Values.credentials.replicaClientId }} system_ids={{ include "fame.fullname" . }}-math-* logicals=*.{{ .Values.rootLogical }}; sub=math-client system_ids=*
{{- end -}}

{{/* Env of the profile, as compose/env/profile-*.env, split by who reads what: the
     sentinel (.node false) or a node of the Go SDK (.node true). */}}
{{- define "fame.profileEnv" -}}
{{- $p := include "fame.profile" .root -}}
- name: FAME_SECURITY_PROFILE
  value: {{ if eq $p "open" }}open{{ else if eq $p "strict" }}strict-overlay{{ else }}overlay{{ end }}
- name: FAME_ADMISSION_PROFILE
  value: {{ if eq $p "direct" }}direct{{ else if eq $p "strict" }}welcome{{ else }}open{{ end }}
{{- if not .node }}
- name: FAME_STICKINESS_LEVEL
  value: {{ if eq $p "open" }}signed-optional{{ else }}strict{{ end }}
{{- else }}
{{- if ne $p "open" }}
- name: FAME_DEFAULT_ENCRYPTION_LEVEL
  value: channel
{{- end }}
{{- if ne $p "strict" }}
- name: FAME_DIRECT_ADMISSION_URL
  value: {{ include "fame.attachURL" .root | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* TLS files and trust: the listener certificate and, for what a scratch image fetches
     over HTTPS itself (JWKS), the CA as the trust store. */}}
{{- define "fame.tlsEnv" -}}
{{- if .Values.tls.existingSecret }}
- name: FAME_TLS_CERT_FILE
  value: /etc/fame/tls/tls.crt
- name: FAME_TLS_KEY_FILE
  value: /etc/fame/tls/tls.key
- name: SSL_CERT_FILE
  value: /etc/fame/tls/ca.crt
{{- end }}
{{- end -}}
{{- define "fame.tlsVolumeMount" -}}
{{- if .Values.tls.existingSecret }}
- name: tls
  mountPath: /etc/fame/tls
  readOnly: true
{{- end }}
{{- end -}}
{{- define "fame.tlsVolume" -}}
{{- if .Values.tls.existingSecret }}
- name: tls
  secret:
    secretName: {{ .Values.tls.existingSecret }}
{{- end }}
{{- end -}}

{{/* The CA's root certificate for strict-overlay nodes. */}}
{{- define "fame.caCertsEnv" -}}
{{- if eq (include "fame.profile" .) "strict" }}
- name: FAME_CA_CERTS
  value: /etc/fame/ca/root-ca.crt
{{- end }}
{{- end -}}
{{- define "fame.caRootMount" -}}
{{- if eq (include "fame.profile" .) "strict" }}
- name: ca-root
  mountPath: /etc/fame/ca/root-ca.crt
  subPath: root-ca.crt
  readOnly: true
{{- end }}
{{- end -}}
{{- define "fame.caRootVolume" -}}
{{- if eq (include "fame.profile" .) "strict" }}
- name: ca-root
  secret:
    secretName: {{ required "ca.existingSecret (the `fame ca init` directory) is required by profile strict" .Values.ca.existingSecret }}
    items: [{key: root-ca.crt, path: root-ca.crt}]
{{- end }}
{{- end -}}

{{- define "fame.containerSecurity" -}}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
{{- end -}}
{{- define "fame.podCommon" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A probe on path at the named port. */}}
{{- define "fame.probe" -}}
httpGet:
  path: {{ .path }}
  port: {{ .port }}
  scheme: {{ include "fame.probeScheme" .root }}
periodSeconds: {{ .period | default 5 }}
timeoutSeconds: 3
failureThreshold: {{ .failures | default 3 }}
{{- end -}}

{{/* Trust for a node's own HTTPS/WSS clients under TLS (Go reads SSL_CERT_FILE). */}}
{{- define "fame.tlsTrustEnv" -}}
{{- if .Values.tls.existingSecret }}
- name: SSL_CERT_FILE
  value: /etc/fame/tls/ca.crt
{{- end }}
{{- end -}}

{{/* An admission service (oauth2, welcome, ca): Deployment + Service. .svc is its name,
     .port its port, .env its env list (YAML), .mounts/.volumes extra. */}}
{{- define "fame.service" -}}
{{- $root := .root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "fame.fullname" $root }}-{{ .svc }}
  labels:
    {{- include "fame.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .svc }}
spec:
  # One replica: the service signs with a key made at start unless one is mounted.
  replicas: 1
  selector:
    matchLabels:
      {{- include "fame.selector" (dict "root" $root "component" .svc) | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "fame.labels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .svc }}
    spec:
      {{- include "fame.podCommon" $root | nindent 6 }}
      containers:
        - name: {{ .svc }}
          image: {{ include "fame.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["/fame", {{ .svc | quote }}]
          ports:
            - name: http
              containerPort: {{ .port }}
              protocol: TCP
          env:
            {{- .env | nindent 12 }}
            {{- with include "fame.tlsEnv" $root }}{{ . | trim | nindent 12 }}{{ end }}
          livenessProbe:
            {{- include "fame.probe" (dict "root" $root "path" "/healthz" "port" "http" "period" 10) | nindent 12 }}
          readinessProbe:
            {{- include "fame.probe" (dict "root" $root "path" "/healthz" "port" "http" "period" 2) | nindent 12 }}
          {{- include "fame.containerSecurity" $root | nindent 10 }}
          resources:
            {{- toYaml .resources | nindent 12 }}
          volumeMounts:
            {{- with include "fame.tlsVolumeMount" $root }}{{ . | trim | nindent 12 }}{{ end }}
            {{- with .mounts }}{{ . | nindent 12 }}{{ end }}
      volumes:
        {{- with include "fame.tlsVolume" $root }}{{ . | trim | nindent 8 }}{{ end }}
        {{- with .volumes }}{{ . | nindent 8 }}{{ end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ include "fame.fullname" $root }}-{{ .svc }}
  labels:
    {{- include "fame.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .svc }}
spec:
  selector:
    {{- include "fame.selector" (dict "root" $root "component" .svc) | nindent 4 }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: http
{{- end -}}
