# Sourced by the tool scripts (.ci/promtool.sh, .ci/helm.sh): builds a
# command from its Go module into the version-keyed cache, once.
#
# go_install_cached NAME BIN PKG@VERSION LDFLAGS WHAT
#   Prints BIN (the cache path) when it exists; otherwise builds PKG@VERSION
#   with `go install` and LDFLAGS, moves the binary to BIN atomically (a
#   concurrent run, or a test reading the cache, sees either no binary or
#   a whole one) and prints BIN. Build logs go to stderr.
go_install_cached() {
	local name=$1 bin=$2 pkg=$3 ldflags=$4 what=$5
	if [ -x "$bin" ]; then
		echo "$bin"
		return 0
	fi
	mkdir -p "$(dirname "$bin")"
	local work
	work=$(mktemp -d)
	# shellcheck disable=SC2064 # expand now: work is local
	trap "chmod -R u+w '$work' 2>/dev/null; rm -rf '$work'" EXIT
	echo "$name: building $what..." >&2
	local start
	start=$(date +%s)
	(
		# Outside any module or workspace, so that neither the
		# go.mod/go.sum of the directory this was started from nor a go.work
		# is read or written.
		cd "$work"
		# `go install pkg@version` refuses -mod flags; keep the caller's
		# other GOFLAGS (e.g. -buildvcs=false).
		local flags="" f
		for f in ${GOFLAGS:-}; do
			case "$f" in -mod=*) ;; *) flags="$flags $f" ;; esac
		done
		GOFLAGS="${flags# }" GOWORK=off GOBIN="$work/bin" CGO_ENABLED=0 \
			go install -trimpath -ldflags "$ldflags" "$pkg" >&2
	)
	echo "$name: built in $(($(date +%s) - start))s" >&2
	mv "$work/bin/$(basename "${pkg%@*}")" "$bin.tmp.$$"
	mv -f "$bin.tmp.$$" "$bin"
	echo "$bin"
}
