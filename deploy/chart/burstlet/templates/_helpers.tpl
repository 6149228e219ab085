{{- define "burstlet.name" -}}
{{- printf "burstlet-%s" .Values.node.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "burstlet.labels" -}}
app.kubernetes.io/name: burstlet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The Deployment's pods; the uninstall Job's pod has another component, so neither the
Deployment, the Service nor the PodDisruptionBudget takes it for one of them. */}}
{{- define "burstlet.selector" -}}
app.kubernetes.io/name: burstlet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: virtual-node
{{- end -}}

{{/* "true" when the replicas elect a leader: asked for, or more than one replica. */}}
{{- define "burstlet.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicas) 1) -}}true{{- end -}}
{{- end -}}

{{- define "burstlet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* burstlet's config file (burstlet run --config), from the values. */}}
{{- define "burstlet.config" -}}
inCluster: true
workers: {{ .Values.workers }}
threads: {{ .Values.threads }}
logLevel: {{ .Values.logLevel }}
healthListen: 0.0.0.0:10255
node:
  name: {{ .Values.node.name }}
  instanceType: {{ .Values.node.instanceType }}
  kubeletPort: {{ .Values.node.kubeletPort }}
  notReadyAfterProviderOutage: {{ .Values.node.notReadyAfterProviderOutage | quote }}
kubeletApi:
  listen: 0.0.0.0:{{ .Values.node.kubeletPort }}
  clientCAFile: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
  serverTLSBootstrap: {{ .Values.kubeletApi.serverTLSBootstrap }}
  approveOwnRequest: {{ .Values.kubeletApi.approveOwnRequest }}
{{- if .Values.admission.enabled }}
admission:
  listen: 0.0.0.0:{{ .Values.admission.port }}
  namespace: {{ .Release.Namespace }}
  hosts: [{{ include "burstlet.name" . }}.{{ .Release.Namespace }}.svc]
  url: https://{{ include "burstlet.name" . }}.{{ .Release.Namespace }}.svc:{{ .Values.admission.port }}/mutate-pods
{{- end }}
provider:
  name: {{ .Values.provider.name }}
  {{- if eq .Values.provider.name "cci" }}
  {{- $c := .Values.provider.cci }}
  cci:
    {{- if $c.kubeconfigSecret }}
    kubeconfig: /etc/burstlet-backend/kubeconfig
    {{- else }}
    endpoint: {{ required "provider.cci.endpoint (or kubeconfigSecret) is required" $c.endpoint }}
    projectID: {{ required "provider.cci.projectID is required with an endpoint" $c.projectID }}
    akskSecret: {{ required "provider.cci.akskSecret is required with an endpoint" $c.akskSecret }}
    {{- end }}
    clusterID: {{ required "provider.cci.clusterID is required" $c.clusterID }}
    namespacePrefix: {{ $c.namespacePrefix }}
    {{- with $c.api }}
    api: {{ . }}
    {{- end }}
    cpu: {{ $c.cpu | quote }}
    memory: {{ $c.memory | quote }}
    pods: {{ $c.pods | quote }}
    sweepInterval: {{ $c.sweepInterval }}
    {{- with $c.network }}
    network:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  {{- end }}
network:
  clusterDNS: {{ toJson .Values.network.clusterDNS }}
  clusterDomain: {{ .Values.network.clusterDomain }}
  apiServer: {{ .Values.network.apiServer | quote }}
  apiServerName: {{ .Values.network.apiServerName | quote }}
  proxy:
    enabled: {{ .Values.network.proxy.enabled }}
    image: {{ include "burstlet.image" . }}
    command: [/usr/bin/burstlet]
    cpu: {{ .Values.network.proxy.cpu }}
    memory: {{ .Values.network.proxy.memory }}
    namespace: {{ .Release.Namespace }}
    tokenLifetime: {{ .Values.network.proxy.tokenLifetime }}
{{- $le := .Values.leaderElection }}
leaderElection:
  enabled: {{ include "burstlet.leaderElection" . | eq "true" }}
  namespace: {{ $le.namespace | default .Release.Namespace }}
  leaseName: {{ $le.leaseName | quote }}
  leaseDuration: {{ $le.leaseDuration }}
  renewDeadline: {{ $le.renewDeadline }}
  retryPeriod: {{ $le.retryPeriod }}
{{- end -}}
