{{/*
Names and labels shared by every template of the chart.
*/}}

{{/* Chart name, overridable. */}}
{{- define "volley.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of every object name: the release name, unless it does not contain
the chart name (then "<release>-<chart>"). Release "volley" gives the same
names as deploy/: volley-agent, volley-gossip, volley-api, volley-token,
volley-ca.
*/}}
{{- define "volley.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "volley.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the agent pods (immutable in a DaemonSet). */}}
{{- define "volley.selectorLabels" -}}
app.kubernetes.io/name: {{ include "volley.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: agent
{{- end -}}

{{/*
VOLLEY_SEED_SELECTOR: the selector labels as key=value,... (the release
instance included, so two releases in one namespace never seed each other).
*/}}
{{- define "volley.seedSelector" -}}
{{- $pairs := list -}}
{{- range $line := splitList "\n" (include "volley.selectorLabels" .) -}}
{{- $kv := splitList ": " $line -}}
{{- $pairs = append $pairs (printf "%s=%s" (index $kv 0) (index $kv 1)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{- define "volley.labels" -}}
helm.sh/chart: {{ include "volley.chart" . }}
{{ include "volley.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: volley
{{- end -}}

{{- define "volley.agentName" -}}
{{- printf "%s-agent" (include "volley.fullname" .) -}}
{{- end -}}

{{- define "volley.gossipServiceName" -}}
{{- printf "%s-gossip" (include "volley.fullname" .) -}}
{{- end -}}

{{- define "volley.apiServiceName" -}}
{{- printf "%s-api" (include "volley.fullname" .) -}}
{{- end -}}

{{- define "volley.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "volley.agentName" .) .Values.serviceAccount.name -}}
{{- else if .Values.serviceAccount.name -}}
{{- .Values.serviceAccount.name -}}
{{- else -}}
{{- fail "serviceAccount.name: required when serviceAccount.create=false; without it the agents would run as the namespace's \"default\" service account and the chart's RBAC would be granted to it. Name the service account you created, or set serviceAccount.create=true" -}}
{{- end -}}
{{- end -}}

{{/* VOLLEY_CLUSTER_ID: clusterId, or the release name. */}}
{{- define "volley.clusterId" -}}
{{- default .Release.Name .Values.clusterId | trunc 63 -}}
{{- end -}}

{{/* The agent pods' nodeSelector: the pool label, then nodeSelector. */}}
{{- define "volley.nodeSelector" -}}
{{- $selector := dict -}}
{{- if .Values.pool.label.key -}}
{{- $_ := set $selector .Values.pool.label.key .Values.pool.label.value -}}
{{- end -}}
{{- range $key, $value := .Values.pool.nodeSelector -}}
{{- $_ := set $selector $key $value -}}
{{- end -}}
{{- if $selector -}}
{{- toYaml $selector -}}
{{- end -}}
{{- end -}}

{{/* The agent pods' annotations: Prometheus' scrape trio, then podAnnotations. */}}
{{- define "volley.podAnnotations" -}}
{{- $annotations := dict -}}
{{- if .Values.metrics.scrapeAnnotations -}}
{{- $_ := set $annotations "prometheus.io/scrape" "true" -}}
{{- $_ := set $annotations "prometheus.io/port" (toString .Values.ports.api) -}}
{{- $_ := set $annotations "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- range $key, $value := .Values.podAnnotations -}}
{{- $_ := set $annotations $key $value -}}
{{- end -}}
{{- if $annotations -}}
{{- toYaml $annotations -}}
{{- end -}}
{{- end -}}

{{/* Secret holding the API token (key "token"). */}}
{{- define "volley.tokenSecretName" -}}
{{- default (printf "%s-token" (include "volley.fullname" .)) .Values.token.existingSecret -}}
{{- end -}}

{{/* Secret holding the fleet CA (keys "ca.crt", "ca.key"). */}}
{{- define "volley.gossipSecretName" -}}
{{- .Values.gossip.existingSecret | default (printf "%s-gossip" (include "volley.fullname" .)) -}}
{{- end -}}

{{/* True (non-empty) when cert-manager's CSI driver issues the agents' certificates. */}}
{{- define "volley.certManager" -}}
{{- if eq .Values.tls.mode "certManager" -}}
{{- if not .Values.tls.certManager.issuer.name -}}
{{- fail "tls.certManager.issuer.name: required with tls.mode certManager (the Issuer or ClusterIssuer that signs the agents' certificates)" -}}
{{- end -}}
true
{{- end -}}
{{- end -}}

{{- define "volley.caSecretName" -}}
{{- if .Values.ca.existingSecret -}}
{{- .Values.ca.existingSecret -}}
{{- else if .Values.ca.generate -}}
{{- printf "%s-ca" (include "volley.fullname" .) -}}
{{- else -}}
{{- fail "ca: set ca.existingSecret to a Secret with ca.crt and ca.key (see `volley ca init --k8s-secret`), or set ca.generate=true" -}}
{{- end -}}
{{- end -}}

{{- define "volley.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The agent pods' labels: the chart's, then podLabels (never a selector label). */}}
{{- define "volley.podLabels" -}}
{{- range $key, $value := .Values.podLabels -}}
{{- if has $key (list "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/component") -}}
{{- fail (printf "podLabels.%s: a selector label of the chart; the DaemonSet and the seed selector rely on its value, so it cannot be set" $key) -}}
{{- end -}}
{{- end -}}
{{- include "volley.labels" . }}
{{- with .Values.podLabels }}
{{ toYaml . }}
{{- end -}}
{{- end -}}

{{/*
VOLLEY_LABELS: pool, region, zone, then the extra labels sorted by key,
as key=value joined by commas; empty values are left out.
*/}}
{{- define "volley.agentLabels" -}}
{{- $pairs := list -}}
{{- range $key := list "pool" "region" "zone" -}}
{{- $value := index $.Values.labels $key -}}
{{- if $value -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- end -}}
{{- range $key := keys .Values.labels.extra | sortAlpha -}}
{{- if has $key (list "pool" "region" "zone") -}}
{{- fail (printf "labels.extra.%s: %q is a label of its own; set labels.%s instead (a second %s label would make VOLLEY_LABELS invalid)" $key $key $key $key) -}}
{{- end -}}
{{- $pairs = append $pairs (printf "%s=%s" $key (index $.Values.labels.extra $key)) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}
