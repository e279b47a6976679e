{{/* Name of the chart, overridable. */}}
{{- define "sfo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "sfo.fullname" -}}
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

{{- define "sfo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sfo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sfo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sfo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: spot-fargate-orchestrator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sfo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sfo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace whose Deployments are managed, when it is one. */}}
{{- define "sfo.watchedNamespace" -}}
{{- default .Release.Namespace .Values.config.kubernetes.namespace }}
{{- end }}

{{/*
"cluster" when the controller watches across the cluster (namespaces ["*"], or a selector), else
"listed". Refuses the combinations the controller itself would refuse, with the same advice.
*/}}
{{- define "sfo.scopeKind" -}}
{{- $k := .Values.config.kubernetes }}
{{- $list := $k.namespaces | default list }}
{{- if kindIs "string" $list }}{{ fail "config.kubernetes.namespaces is a list: [\"a\", \"b\"], or [\"*\"] for every namespace" }}{{ end }}
{{- if and (or $list $k.namespace_selector) (eq $k.mode "single") }}
{{- fail "config.kubernetes.namespaces and namespace_selector are for mode \"namespace\": single mode manages one Deployment in config.kubernetes.namespace" }}
{{- end }}
{{- if and $list $k.namespace }}
{{- fail "set config.kubernetes.namespace or config.kubernetes.namespaces, not both (list that namespace in namespaces)" }}
{{- end }}
{{- if and $k.namespace_selector $k.namespace }}
{{- fail "config.kubernetes.namespace_selector picks namespaces across the cluster: leave config.kubernetes.namespace empty" }}
{{- end }}
{{- if and (has "*" $list) (gt (len $list) 1) }}
{{- fail "config.kubernetes.namespaces: \"*\" already means every namespace" }}
{{- end }}
{{- if and $k.namespace_selector $list (not (has "*" $list)) }}
{{- fail "config.kubernetes.namespace_selector needs config.kubernetes.namespaces empty or [\"*\"]" }}
{{- end }}
{{- if or $k.namespace_selector (has "*" $list) }}cluster{{ else }}listed{{ end }}
{{- end }}

{{/* The managed namespaces of a listed scope, separated by commas. */}}
{{- define "sfo.listedNamespaces" -}}
{{- $list := .Values.config.kubernetes.namespaces | default list }}
{{- if $list }}{{ join "," $list }}{{ else }}{{ include "sfo.watchedNamespace" . }}{{ end }}
{{- end }}

{{/* Where Events about Nodes go: the namespace the RBAC grants them in. */}}
{{- define "sfo.nodeEventsNamespace" -}}
{{- $rbac := .Values.rbac.nodeEventsNamespace }}
{{- if not (has $rbac (list "default" "kube-system")) }}
{{- fail (printf "rbac.nodeEventsNamespace: default or kube-system, got %q (the API server accepts Events about a Node in no other namespace)" (toString $rbac)) }}
{{- end }}
{{- $config := .Values.config.controller.node_events_namespace }}
{{- if and $config (ne $config $rbac) }}
{{- fail (printf "config.controller.node_events_namespace (%s) differs from rbac.nodeEventsNamespace (%s), where the chart grants the Events: set rbac.nodeEventsNamespace instead" $config $rbac) }}
{{- end }}
{{- $rbac }}
{{- end }}

{{- define "sfo.leaseName" -}}
{{- default (include "sfo.fullname" .) .Values.config.controller.lease_name }}
{{- end }}

{{- define "sfo.recordKeySecret" -}}
{{- default (printf "%s-record-key" (include "sfo.fullname" .)) .Values.config.controller.record_key_secret }}
{{- end }}

{{- define "sfo.leaseNamespace" -}}
{{- default .Release.Namespace .Values.config.controller.lease_namespace }}
{{- end }}

{{- define "sfo.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "sfo.slackSecretName" -}}
{{- if .Values.alerts.existingSecret }}
{{- .Values.alerts.existingSecret }}
{{- else if .Values.config.alerts.slack_webhook_url }}
{{- printf "%s-slack" (include "sfo.fullname" .) }}
{{- end }}
{{- end }}

{{/*
The config.toml value of one setting: strings as TOML basic strings (JSON string syntax is valid
TOML), booleans bare, whole numbers without a fraction.
*/}}
{{- define "sfo.tomlValue" -}}
{{- if kindIs "bool" . }}
{{- . }}
{{- else if or (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) }}
{{- if eq (float64 .) (float64 (int64 .)) }}{{ int64 . }}{{ else }}{{ . }}{{ end }}
{{- else }}
{{- toJson (toString .) }}
{{- end }}
{{- end }}

{{/*
config.toml from .Values.config. Settings the chart derives (the watched namespace, the Lease)
are filled in here; the Slack webhook never is (it comes from a Secret through the environment).
*/}}
{{- define "sfo.configToml" -}}
{{- $k := .Values.config.kubernetes }}
{{- $list := $k.namespaces | default list }}
{{- $derived := dict
  "kubernetes.namespace" (ternary "" (include "sfo.watchedNamespace" .) (or (gt (len $list) 0) (ne ($k.namespace_selector | default "") "")))
  "kubernetes.namespaces" (ternary "" (ternary "*" (toJson $list) (has "*" $list)) (eq (len $list) 0))
  "controller.lease_name" (include "sfo.leaseName" .)
  "controller.lease_namespace" (include "sfo.leaseNamespace" .)
  "controller.node_events_namespace" (include "sfo.nodeEventsNamespace" .)
  "controller.record_key_secret" (include "sfo.recordKeySecret" .) }}
{{- $verbatim := list "kubernetes.namespaces" }}
{{- $lines := list }}
{{- range $section, $settings := .Values.config }}
{{- if $lines }}{{ $lines = append $lines "" }}{{ end }}
{{- $lines = append $lines (printf "[%s]" $section) }}
{{- range $key, $value := $settings }}
{{- $full := printf "%s.%s" $section $key }}
{{- if hasKey $derived $full }}{{ $value = get $derived $full }}{{ end }}
{{- if eq $full "alerts.slack_webhook_url" }}
{{- else if or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value "")) }}
{{- else if and (has $full $verbatim) (hasPrefix "[" $value) }}
{{- $lines = append $lines (printf "%s = %s" $key $value) }}
{{- else if or (kindIs "map" $value) (kindIs "slice" $value) }}
{{- fail (printf "config.%s: a setting is a string, number or boolean, got %s" $full (kindOf $value)) }}
{{- else }}
{{- $lines = append $lines (printf "%s = %s" $key (include "sfo.tomlValue" $value)) }}
{{- end }}
{{- end }}
{{- end }}
{{- join "\n" $lines }}
{{- end }}

{{/*
The pod's affinity: .Values.affinity, with the placement rules added. The spot exclusion is ANDed
into every required node selector term (terms are ORed, so a term of the user's without it would
let the pods onto spot).
*/}}
{{- define "sfo.affinity" -}}
{{- $affinity := deepCopy (default (dict) .Values.affinity) }}
{{- if .Values.placement.avoidSpot }}
{{- $avoid := list
  (dict "key" "eks.amazonaws.com/capacityType" "operator" "NotIn" "values" (list "SPOT"))
  (dict "key" "karpenter.sh/capacity-type" "operator" "NotIn" "values" (list "spot"))
  (dict "key" .Values.config.compute.compute_label_key "operator" "NotIn" "values" (list .Values.config.compute.spot_label)) }}
{{- $nodeAffinity := default (dict) (get $affinity "nodeAffinity") }}
{{- $required := default (dict) (get $nodeAffinity "requiredDuringSchedulingIgnoredDuringExecution") }}
{{- $terms := list }}
{{- range (default (list (dict)) (get $required "nodeSelectorTerms")) }}
{{- $term := deepCopy . }}
{{- $_ := set $term "matchExpressions" (concat (default (list) (get $term "matchExpressions")) $avoid) }}
{{- $terms = append $terms $term }}
{{- end }}
{{- $_ := set $required "nodeSelectorTerms" $terms }}
{{- $_ := set $nodeAffinity "requiredDuringSchedulingIgnoredDuringExecution" $required }}
{{- $_ := set $affinity "nodeAffinity" $nodeAffinity }}
{{- end }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- $anti := default (dict) (get $affinity "podAntiAffinity") }}
{{- $selector := dict "matchLabels" (include "sfo.selectorLabels" . | fromYaml) }}
{{- if .Values.placement.requiredHostAntiAffinity }}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" $selector }}
{{- $_ := set $anti "requiredDuringSchedulingIgnoredDuringExecution" (append (default (list) (get $anti "requiredDuringSchedulingIgnoredDuringExecution")) $term) }}
{{- else }}
{{- $term := dict "weight" 100 "podAffinityTerm" (dict "topologyKey" "kubernetes.io/hostname" "labelSelector" $selector) }}
{{- $_ := set $anti "preferredDuringSchedulingIgnoredDuringExecution" (append (default (list) (get $anti "preferredDuringSchedulingIgnoredDuringExecution")) $term) }}
{{- end }}
{{- $_ := set $affinity "podAntiAffinity" $anti }}
{{- end }}
{{- if $affinity }}{{ toYaml $affinity }}{{ end }}
{{- end }}

{{/* The zone spread of the replicas, unless topologySpreadConstraints replaces it. */}}
{{- define "sfo.topologySpread" -}}
{{- if .Values.topologySpreadConstraints }}
{{- toYaml .Values.topologySpreadConstraints }}
{{- else if and (gt (int .Values.replicaCount) 1) .Values.placement.zoneSpread }}
{{- if not (has .Values.placement.zoneSpread (list "ScheduleAnyway" "DoNotSchedule")) }}
{{- fail (printf "placement.zoneSpread: ScheduleAnyway, DoNotSchedule or empty, got %s" .Values.placement.zoneSpread) }}
{{- end }}
- maxSkew: 1
  topologyKey: topology.kubernetes.io/zone
  whenUnsatisfiable: {{ .Values.placement.zoneSpread }}
  labelSelector:
    matchLabels:
      {{- include "sfo.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}
