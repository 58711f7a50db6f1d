#!/usr/bin/env bash
# Prints the path of a real promtool binary, building it first when the
# cache does not have it. The Prometheus rules in deploy/prometheus are
# checked (promtool check rules) and unit-tested (promtool test rules) by
# Prometheus's own evaluator, because whether an alert fires is decided by
# its PromQL semantics (staleness, rate extrapolation, `for`), not by ours.
# No release tarball can be downloaded here, so it is built from its Go
# module; that takes five to seven minutes on two cores with a cold Go
# cache, so the result is cached by version and this script is a no-op
# once it exists.
#
# Usage: bin=$(bash .ci/promtool.sh)   (build logs go to stderr)
set -euo pipefail

version=v0.316.0
module=github.com/prometheus/prometheus
# Prometheus 3.x.y is tagged v0.3xx.y as a Go module: v0.316.0 is 3.16.0,
# the version `promtool --version` reports.
minor=${version#v0.}
release="${minor:0:1}.$((10#${minor:1:2}))${minor:3}"
cache="${EXFILGUARD_CACHE:-$HOME/.cache/exfilguard}/bin"
bin="$cache/promtool-$version"

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

echo "promtool.sh: building promtool $release ($module $version, five to seven minutes)..." >&2
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
	GOFLAGS="${flags# }" GOWORK=off GOBIN="$work/bin" CGO_ENABLED=0 \
		go install -trimpath \
		-ldflags "-X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=module" \
		"$module/cmd/promtool@$version" >&2
)
echo "promtool.sh: built in $(($(date +%s) - start))s" >&2

# Atomic: a concurrent run, or a test reading the cache, sees either no
# binary or a whole one.
mv "$work/bin/promtool" "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"
echo "$bin"
