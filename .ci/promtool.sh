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

# shellcheck source=go-install.sh
. "$(dirname "$0")/go-install.sh"
go_install_cached promtool.sh "$bin" "$module/cmd/promtool@$version" \
	"-X github.com/prometheus/common/version.Version=$release -X github.com/prometheus/common/version.Branch=module" \
	"promtool $release ($module $version, five to seven minutes)"
