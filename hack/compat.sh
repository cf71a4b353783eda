#!/usr/bin/env bash
# make test-compat: the stories that run beside TiDB Operator's real controller-manager,
# against each TiDB Operator version given (default: every version the Go module proxy
# serves). For each version it builds that version's controller-manager from a throwaway
# tools module (the replace directives of TiDB Operator's own go.mod, as in
# hack/tools/tidb-operator), caches it with the version's CRDs, and runs the stories with
# KUBEBUILDER_ASSETS pointing at a directory that holds the shared control plane and that
# version's TiDB Operator. A version that does not build or whose stories fail is reported
# and the next one is tried; the exit code says whether all passed.
#
#   COMPAT_RUN   the go test -run pattern (default: every story with a TiDB Operator)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(v1.6.6 v1.6.5 v1.6.0 v1.5.4)
run=${COMPAT_RUN:-'TestRealOperator|TestLogStart|TestRetries|TestRetryTimeout|TestPodDeath|TestRestartMidBackoff|TestConcurrentWriter|TestLiveOldPod|TestAPIServerOutage|TestReconcilerKilled|TestWebhookDown|TestKernel|TestLeaderElection|TestTwoReconcilers|TestFailedLogStart|TestWriteGuard|TestErrorPaused|TestPausedAgain|TestGCPassing|TestManualPause|TestFalseTaskNotFound|TestOperatorPauseRecords|TestCheckpointLag|TestHandOff'}

base=$("$here/envtest-assets.sh" | tail -n 1) || exit 1
cache_root=${ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tidb-backup-guard}
log() { printf '[compat %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

declare -A result
for v in "${versions[@]}"; do
	dir="$cache_root/compat/tidb-operator-$v"
	mkdir -p "$dir"
	if [ ! -x "$dir/tidb-controller-manager" ]; then
		mod=$(mktemp -d)
		cat >"$mod/go.mod" <<EOF
module compat

go 1.26.0

require github.com/pingcap/tidb-operator $v

replace (
	github.com/Azure/go-autorest => github.com/Azure/go-autorest v14.2.0+incompatible
	github.com/pingcap/tidb-operator/pkg/apis => github.com/pingcap/tidb-operator/pkg/apis $v
	github.com/pingcap/tidb-operator/pkg/client => github.com/pingcap/tidb-operator/pkg/client $v
	github.com/renstrom/dedent => github.com/lithammer/dedent v1.1.0
)
EOF
		printf 'package compat\n\nimport _ "github.com/pingcap/tidb-operator/cmd/controller-manager"\n' >"$mod/tools.go"
		log "$v: building the controller-manager (about 8 CPU-minutes)"
		# GONOSUMDB: the checksum database does not know every served version (v1.6.0
		# answers 404 there); the module proxy serves them all the same.
		if ! (cd "$mod" && GONOSUMDB=github.com/pingcap/tidb-operator go mod tidy >"$dir/build.log" 2>&1 &&
			go build -trimpath -o "$dir/.tidb-controller-manager.tmp" github.com/pingcap/tidb-operator/cmd/controller-manager >>"$dir/build.log" 2>&1); then
			log "$v: does not build; see $dir/build.log"
			result[$v]="does not build: $(grep -m1 -E 'error|cannot|undefined' "$dir/build.log" | cut -c1-160)"
			rm -rf "$mod"
			continue
		fi
		src=$(cd "$mod" && go list -m -f '{{.Dir}}' github.com/pingcap/tidb-operator)
		rm -rf "$dir/tidb-operator-crds"
		cp -r "$src/manifests/crd/v1" "$dir/tidb-operator-crds" && chmod -R u+w "$dir/tidb-operator-crds"
		mv "$dir/.tidb-controller-manager.tmp" "$dir/tidb-controller-manager"
		rm -rf "$mod"
	fi
	for bin in etcd kube-apiserver kubectl helm staticcheck; do
		ln -sf "$base/$bin" "$dir/$bin"
	done
	echo "$v" >"$dir/tidb-operator-version"
	log "$v: running the stories beside it"
	if (cd "$root" && KUBEBUILDER_ASSETS="$dir" go test -count=1 -timeout 30m -parallel "${PARALLEL:-12}" ./test/integration/ -run "$run" -v >"$dir/test.log" 2>&1); then
		result[$v]=passed
	else
		result[$v]="failed: $(grep -E '^--- FAIL' "$dir/test.log" | tr '\n' ' ' | cut -c1-300) (see $dir/test.log)"
	fi
	log "$v: ${result[$v]}"
done

status=0
echo
for v in "${versions[@]}"; do
	echo "$v: ${result[$v]}"
	[ "${result[$v]}" = passed ] || status=1
done
exit $status
