#!/usr/bin/env bash
# Prints the path of a helm binary, building it first when the cache does
# not have it. The chart in deploy/helm/exfilguard is linted (helm lint
# --strict) and rendered (helm template) by the real Helm, because what
# matters is how Helm itself renders, merges values and applies
# values.schema.json, not an imitation of it. No release tarball can be
# downloaded here, so it is built from its Go module; that takes about two
# minutes on two cores with a cold Go cache, so the result is cached by
# version and this script is a no-op once it exists.
#
# Usage: bin=$(bash .ci/helm.sh)   (build logs go to stderr)
set -euo pipefail

version=v3.22.0
module=helm.sh/helm/v3
cache="${EXFILGUARD_CACHE:-$HOME/.cache/exfilguard}/bin"
bin="$cache/helm-$version"

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "helm.sh: building helm $version ($module, about two minutes)..." >&2
start=$(date +%s)
(
	# Outside any module or workspace, so that neither the go.mod/go.sum of
	# the directory this was started from nor a go.work is read or written.
	cd "$work"
	# `go install pkg@version` refuses -mod flags; keep the caller's other
	# GOFLAGS (e.g. -buildvcs=false).
	flags=""
	for f in ${GOFLAGS:-}; do
		case "$f" in -mod=*) ;; *) flags="$flags $f" ;; esac
	done
	# helm --version reports internal/version.version; without this ldflag
	# a module build says v3.x-dev-ish defaults.
	GOFLAGS="${flags# }" GOWORK=off GOBIN="$work/bin" CGO_ENABLED=0 \
		go install -trimpath \
		-ldflags "-X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
		"$module/cmd/helm@$version" >&2
)
echo "helm.sh: built in $(($(date +%s) - start))s" >&2

# Atomic: a concurrent run, or a test reading the cache, sees either no
# binary or a whole one.
mv "$work/bin/helm" "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"
echo "$bin"
