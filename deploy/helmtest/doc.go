// Package helmtest tests the Helm chart in deploy/helm/exfilguard: it
// renders the chart with the real helm (EXFILGUARD_HELM, or the binary
// .ci/helm.sh caches) over every values file in the chart's ci/ directory,
// decodes every rendered object strictly into the Kubernetes and
// Prometheus Operator API types, and checks what matters for running the
// detector: a restricted security context, probes and a grace period long
// enough for the final checkpoint, state on a volume, secrets only as
// mounted files, a config the detector itself accepts, and a schema that
// rejects misspelt keys.
//
// It is a module of its own so that the Kubernetes API dependencies stay
// out of the detector's go.mod. Run it from this directory:
//
//	EXFILGUARD_HELM=$(bash ../../.ci/helm.sh) go test -count=1 ./...
//
// Without helm it skips, unless EXFILGUARD_CI=1, where it fails.
package helmtest
