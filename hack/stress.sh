#!/usr/bin/env bash
# make stress: run the integration stories matching RUN, COUNT times in a row, and say how
# often each passed and failed. A story that failed even once is a bug, in the product or
# in the test, until its race is named (docs/development.md); this is how a fix shows the
# race is gone. Each round runs the chosen stories in parallel, as make test does.
#
#   RUN       go test -run pattern (required)
#   COUNT     rounds (default 20)
#   PARALLEL  stories at once (default 12)
#   KUBEBUILDER_ASSETS  the control plane and TiDB Operator to run beside (default: the
#             pinned ones from hack/envtest-assets.sh; hack/compat.sh's directories work too)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RUN:?set RUN to a go test -run pattern, e.g. RUN=TestHandOff}"
count=${COUNT:-20}
if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
	KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh etcd kube-apiserver kubectl helm tidb-operator | tail -n 1)
fi
export KUBEBUILDER_ASSETS
mkdir -p bin
log=bin/stress.log
echo "stress: $RUN x $count beside TiDB Operator $(cat "$KUBEBUILDER_ASSETS/tidb-operator-version"); log: $log" >&2
rc=0
go test -count="$count" -timeout 0 -parallel "${PARALLEL:-12}" -v -run "$RUN" ./test/integration/ >"$log" 2>&1 || rc=$?
# One line a story: how often it passed and failed (subtests included).
grep -E '^\s*--- (PASS|FAIL|SKIP)' "$log" | awk '{sub(":", "", $2); print $3, tolower($2)}' | sort | uniq -c |
	awk '{runs[$2] = runs[$2] sprintf(" %s %d", $3, $1)} END {for (t in runs) print t ":" runs[t]}' | sort
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
echo "stress: $passed passed, $failed failed"
exit $rc
