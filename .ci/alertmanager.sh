#!/usr/bin/env bash
# Prints the path of a real Alertmanager binary, building it first when the
# cache does not have it. The alertmanager sink is tested against the real
# server because what matters (how it merges re-posts of one label set,
# when a posted endsAt resolves an alert) is its behaviour, not ours; and
# the only way to get it here is its Go module, since no release tarball
# can be downloaded. Building takes about two minutes on two cores, so the
# result is cached and this script is a no-op once it exists.
#
# Usage: bin=$(bash .ci/alertmanager.sh)   (build logs go to stderr)
set -euo pipefail

version=v0.35.0
module=github.com/prometheus/alertmanager
cache="${EXFILGUARD_CACHE:-$HOME/.cache/exfilguard}/bin"
bin="$cache/alertmanager-$version"

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# An empty module directory, so that the download neither reads nor writes
# the go.mod/go.sum of whatever directory this was started from.
mkdir "$work/dl"
dir=$(cd "$work/dl" && go mod download -json "$module@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir" ]; then
	echo "alertmanager.sh: go mod download $module@$version gave no module directory" >&2
	exit 1
fi

# The module cache is read-only, and the build needs one file added.
cp -R "$dir" "$work/src"
chmod -R u+w "$work/src"
# ui/web.go embeds app/dist, the built web UI, which the module does not
# ship (it is made by npm in a release build). The API does not need it.
mkdir -p "$work/src/ui/app/dist/elm" "$work/src/ui/app/dist/mantine"
for d in "" elm/ mantine/; do
	echo '<!doctype html><title>Alertmanager</title><p>UI not built (exfilguard test binary).' \
		>"$work/src/ui/app/dist/${d}index.html"
done

echo "alertmanager.sh: building Alertmanager $version (about two minutes)..." >&2
start=$(date +%s)
(
	cd "$work/src"
	# -mod=mod: the copied go.sum is the module's own and complete, but
	# a GOFLAGS=-mod=vendor or readonly from the caller must not apply.
	GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
		-ldflags "-X github.com/prometheus/common/version.Version=${version#v} -X github.com/prometheus/common/version.Branch=module" \
		-o "$work/alertmanager" ./cmd/alertmanager
)
echo "alertmanager.sh: built in $(($(date +%s) - start))s" >&2

# Atomic: a concurrent run, or a test reading the cache, sees either no
# binary or a whole one.
mv "$work/alertmanager" "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"
echo "$bin"
