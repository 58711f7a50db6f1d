#!/usr/bin/env bash
# Prints the path of a helm binary, building it first when the cache does
# not have it. The chart in deploy/helm/exfilguard is linted (helm lint
# --strict) and rendered (helm template) by the real Helm, because what
# matters is how Helm itself renders, merges values and applies
# values.schema.json, not an imitation of it. No release tarball can be
# downloaded here, so it is built from its Go module; that takes about three
# minutes on two cores with cold Go caches (176 s measured, downloads
# included), so the result is cached by version and this script is a no-op
# once it exists.
#
# Usage: bin=$(bash .ci/helm.sh)   (build logs go to stderr)
set -euo pipefail

version=v3.22.0
module=helm.sh/helm/v3
# The Kubernetes version of helm's client-go (1 + major, minor), as its
# release build sets it; change it with the version.
k8s_major=1
k8s_minor=37
cache="${EXFILGUARD_CACHE:-$HOME/.cache/exfilguard}/bin"
bin="$cache/helm-$version-k8s$k8s_major.$k8s_minor"

# The ldflags of helm's own release build (its Makefile): the version
# `helm version` reports, and the Kubernetes version that `helm
# template` and `helm lint` assume without a cluster, which the release
# derives from its client-go (v0.37.0 in helm v3.22.0: Kubernetes
# 1.37). Without them a module build claims Kubernetes 1.20, and a
# chart's kubeVersion constraint fails against it.
ld="-X helm.sh/helm/v3/internal/version.version=$version"
ld="$ld -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in chartutil lint/rules; do
	ld="$ld -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=$k8s_major"
	ld="$ld -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=$k8s_minor"
done

# shellcheck source=go-install.sh
. "$(dirname "$0")/go-install.sh"
go_install_cached helm.sh "$bin" "$module/cmd/helm@$version" "$ld" "helm $version ($module, about three minutes)"
