{{/*
Names and labels.
*/}}
{{- define "exfilguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "exfilguard.fullname" -}}
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

{{- define "exfilguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "exfilguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "exfilguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "exfilguard.labels" -}}
helm.sh/chart: {{ include "exfilguard.chart" . }}
{{ include "exfilguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: exfilguard
{{- end }}

{{- define "exfilguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "exfilguard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "exfilguard.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Paths inside the container. The data volume holds the Badger store
(state.dir) and file sinks' output; the ConfigMap and the Secrets are
mounted read-only.
*/}}
{{- define "exfilguard.dataDir" -}}/var/lib/exfilguard{{- end }}
{{- define "exfilguard.configDir" -}}/etc/exfilguard/config{{- end }}
{{- define "exfilguard.secretsDir" -}}/etc/exfilguard/secrets{{- end }}

{{/*
The Secret files to mount: a list of {secret, key, path} (path relative to
the secrets directory), as YAML. The rendered config refers to the same
paths; nothing else about a Secret reaches the config.
*/}}
{{- define "exfilguard.secretFiles" -}}
{{- $files := list }}
{{- $k := .Values.kafka }}
{{- if and $k.tls.enabled $k.tls.ca.existingSecret }}
{{- $files = append $files (dict "secret" $k.tls.ca.existingSecret "key" $k.tls.ca.key "path" "kafka/ca.crt") }}
{{- end }}
{{- if and $k.tls.enabled $k.tls.clientCert.existingSecret }}
{{- $files = append $files (dict "secret" $k.tls.clientCert.existingSecret "key" $k.tls.clientCert.certKey "path" "kafka/client.crt") }}
{{- $files = append $files (dict "secret" $k.tls.clientCert.existingSecret "key" $k.tls.clientCert.keyKey "path" "kafka/client.key") }}
{{- end }}
{{- if $k.sasl.mechanism }}
{{- $files = append $files (dict "secret" $k.sasl.password.existingSecret "key" $k.sasl.password.key "path" "kafka/sasl-password") }}
{{- end }}
{{- if .Values.pseudonymKey.existingSecret }}
{{- $files = append $files (dict "secret" .Values.pseudonymKey.existingSecret "key" .Values.pseudonymKey.key "path" "pseudonym/key") }}
{{- end }}
{{- range $s := .Values.sinks }}
{{- with $s.secretFrom }}
{{- $files = append $files (dict "secret" .existingSecret "key" .key "path" (printf "sinks/%s/secret" $s.name)) }}
{{- end }}
{{- with $s.urlFrom }}
{{- $files = append $files (dict "secret" .existingSecret "key" .key "path" (printf "sinks/%s/url" $s.name)) }}
{{- end }}
{{- end }}
{{- dict "files" $files | toYaml }}
{{- end }}

{{/*
Duration (the detector's syntax: 90s, 15m, 1d12h, 500ms) in whole seconds,
rounded up.
*/}}
{{- define "exfilguard.durationSeconds" -}}
{{- $ms := 0 }}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d|w)" (toString .) -1 }}
{{- $n := regexFind "^[0-9]+" . | atoi }}
{{- $u := regexReplaceAll "^[0-9]+" . "" }}
{{- $ms = add $ms (mul $n (get $units $u)) }}
{{- end }}
{{- div (add $ms 999) 1000 }}
{{- end }}

{{/*
A Kubernetes memory quantity in whole MiB, rounded down. Fails, naming
the value, on a form it does not know.
*/}}
{{- define "exfilguard.mebibytes" -}}
{{- if kindIs "float64" . }}
{{- divf . 1048576.0 | floor | int }}
{{- else }}
{{- $q := toString . }}
{{- $units := dict "" 1.0 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 }}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $q }}
{{- $unit := trimPrefix $num $q }}
{{- if or (not $num) (not (hasKey $units $unit)) }}
{{- fail (printf "resources.limits.memory %q: use a plain quantity such as 910Mi or 1.5Gi (or set goMemLimit)" $q) }}
{{- end }}
{{- divf (mulf (float64 $num) (get $units $unit)) 1048576.0 | floor | int }}
{{- end }}
{{- end }}

{{/*
GOMEMLIMIT: goMemLimit, or the memory limit minus 128 MiB. Empty when
neither is set.
*/}}
{{- define "exfilguard.goMemLimit" -}}
{{- if .Values.goMemLimit }}
{{- .Values.goMemLimit }}
{{- else }}
{{- $limit := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- if $limit }}
{{- $mib := include "exfilguard.mebibytes" $limit | int }}
{{- printf "%dMiB" (sub $mib 128) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The detector's config file: .Values.config with the keys the chart owns
set from the other values. Secrets appear only as paths of mounted files.
*/}}
{{- define "exfilguard.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $secrets := include "exfilguard.secretsDir" . }}
{{- $data := include "exfilguard.dataDir" . }}
{{- $kafka := get $cfg "kafka" | default dict }}
{{- $_ := set $kafka "brokers" .Values.kafka.brokers }}
{{- $_ := set $kafka "topics" .Values.kafka.topics }}
{{- with .Values.kafka.tls }}
{{- if .enabled }}
{{- $tls := dict "enabled" true }}
{{- if .ca.existingSecret }}
{{- $_ := set $tls "ca_file" (printf "%s/kafka/ca.crt" $secrets) }}
{{- end }}
{{- if .clientCert.existingSecret }}
{{- $_ := set $tls "cert_file" (printf "%s/kafka/client.crt" $secrets) }}
{{- $_ := set $tls "key_file" (printf "%s/kafka/client.key" $secrets) }}
{{- end }}
{{- if .serverName }}
{{- $_ := set $tls "server_name" .serverName }}
{{- end }}
{{- if .insecureSkipVerify }}
{{- $_ := set $tls "insecure_skip_verify" true }}
{{- end }}
{{- $_ := set $kafka "tls" $tls }}
{{- end }}
{{- end }}
{{- with .Values.kafka.sasl }}
{{- if .mechanism }}
{{- $_ := set $kafka "sasl" (dict "mechanism" .mechanism "username" .username "password_file" (printf "%s/kafka/sasl-password" $secrets)) }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "kafka" $kafka }}
{{- $state := get $cfg "state" | default dict }}
{{- $_ := set $state "dir" (printf "%s/state" $data) }}
{{- $_ := set $cfg "state" $state }}
{{- $http := get $cfg "http" | default dict }}
{{- $_ := set $http "listen" (printf ":%d" (int .Values.metrics.port)) }}
{{- $_ := set $cfg "http" $http }}
{{- if .Values.sinks }}
{{- $sinks := list }}
{{- range $s := .Values.sinks }}
{{- $sink := omit (deepCopy $s) "secretFrom" "urlFrom" }}
{{- if $s.secretFrom }}
{{- $_ := set $sink "secret_file" (printf "%s/sinks/%s/secret" $secrets $s.name) }}
{{- end }}
{{- if $s.urlFrom }}
{{- $_ := set $sink "url_file" (printf "%s/sinks/%s/url" $secrets $s.name) }}
{{- end }}
{{- if and (eq $s.type "file") (not $s.path) }}
{{- $_ := set $sink "path" (printf "%s/alerts/%s.jsonl" $data $s.name) }}
{{- end }}
{{- $sinks = append $sinks $sink }}
{{- end }}
{{- $alerts := get $cfg "alerts" | default dict }}
{{- $_ := set $alerts "sinks" $sinks }}
{{- $_ := set $cfg "alerts" $alerts }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Checks across values that the schema cannot express, each failing with
what to change. Included by the StatefulSet.
*/}}
{{- define "exfilguard.validate" -}}
{{- $cfg := .Values.config | default dict }}
{{- /* Memory: 320 MiB + 6 KiB per entity held (docs/operations.md); with
  max_entities 0 (no cap) only the 320 MiB can be checked. The default of
  engine.max_entities is the detector's. */}}
{{- $maxEntities := dig "engine" "max_entities" 100000 $cfg | int }}
{{- $limit := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- if $limit }}
{{- $have := include "exfilguard.mebibytes" $limit | int }}
{{- $need := add 320 (div (add (mul 6 (max $maxEntities 0)) 1023) 1024) }}
{{- if lt $have $need }}
{{- fail (printf "resources.limits.memory %v (%d MiB) is below 320 MiB + 6 KiB x config.engine.max_entities (%d) = %d MiB: raise the limit or lower max_entities (docs/operations.md, Memory)" $limit $have $maxEntities $need) }}
{{- end }}
{{- end }}
{{- /* Shutdown: state.shutdown_timeout, then up to 10s of sink drain and 5s
  of trace flush, must fit in the grace period. */}}
{{- $shutdown := dig "state" "shutdown_timeout" "20s" $cfg }}
{{- $need := add (include "exfilguard.durationSeconds" $shutdown | int) 15 }}
{{- if lt (int .Values.terminationGracePeriodSeconds) $need }}
{{- fail (printf "terminationGracePeriodSeconds %d is shorter than config.state.shutdown_timeout (%s) + 15s for the sink drain and trace flush: set it to at least %d, or the final checkpoint may be killed" (int .Values.terminationGracePeriodSeconds) $shutdown $need) }}
{{- end }}
{{- with .Values.kafka.tls }}
{{- if and (not .enabled) (or .ca.existingSecret .clientCert.existingSecret .serverName .insecureSkipVerify) }}
{{- fail "kafka.tls: a CA, client certificate, serverName or insecureSkipVerify is set but kafka.tls.enabled is false" }}
{{- end }}
{{- end }}
{{- with .Values.kafka.sasl }}
{{- if .mechanism }}
{{- if not .username }}
{{- fail (printf "kafka.sasl.username must be set for mechanism %s" .mechanism) }}
{{- end }}
{{- if not .password.existingSecret }}
{{- fail (printf "kafka.sasl.password.existingSecret must name the Secret holding the password for mechanism %s" .mechanism) }}
{{- end }}
{{- else if or .username .password.existingSecret }}
{{- fail "kafka.sasl.username or password is set but kafka.sasl.mechanism is empty" }}
{{- end }}
{{- end }}
{{- $data := include "exfilguard.dataDir" . }}
{{- $names := dict }}
{{- range $i, $s := .Values.sinks }}
{{- $where := printf "sinks[%d] (%s)" $i $s.name }}
{{- if hasKey $names $s.name }}
{{- fail (printf "%s: the name is used by another sink" $where) }}
{{- end }}
{{- $_ := set $names $s.name true }}
{{- if and (has $s.type (list "slack" "webhook" "pagerduty")) $s.url $s.urlFrom }}
{{- fail (printf "%s: set url or urlFrom, not both" $where) }}
{{- end }}
{{- if and (eq $s.type "slack") (not $s.urlFrom) }}
{{- fail (printf "%s: a Slack webhook URL is a secret: set urlFrom: {existingSecret: NAME, key: KEY}" $where) }}
{{- end }}
{{- if and (eq $s.type "webhook") (not $s.url) (not $s.urlFrom) }}
{{- fail (printf "%s: a webhook sink needs url or urlFrom" $where) }}
{{- end }}
{{- if and (has $s.type (list "webhook" "pagerduty")) (not $s.secretFrom) }}
{{- fail (printf "%s: a %s sink needs secretFrom: {existingSecret: NAME, key: KEY} (%s)" $where $s.type (ternary "the signing secret" "the routing key" (eq $s.type "webhook"))) }}
{{- end }}
{{- if and $s.secretFrom (not (has $s.type (list "webhook" "pagerduty"))) }}
{{- fail (printf "%s: secretFrom is for webhook and pagerduty sinks only" $where) }}
{{- end }}
{{- if and $s.urlFrom (not (has $s.type (list "slack" "webhook" "pagerduty"))) }}
{{- fail (printf "%s: urlFrom is for slack, webhook and pagerduty sinks only" $where) }}
{{- end }}
{{- if and (eq $s.type "file") $s.path (not (hasPrefix (printf "%s/" $data) $s.path)) }}
{{- fail (printf "%s: path %s is not under %s, the only writable volume (the root filesystem is read-only)" $where $s.path $data) }}
{{- end }}
{{- if and (eq $s.type "file") $s.path (hasPrefix (printf "%s/state/" $data) $s.path) }}
{{- fail (printf "%s: path %s is inside state.dir (%s/state), which belongs to the state store" $where $s.path $data) }}
{{- end }}
{{- end }}
{{- end }}
