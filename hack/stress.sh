#!/usr/bin/env bash
# make stress: run chosen integration stories many times and say how often each passed and
# failed. A story that failed even once is a bug, in the product or in the test, until its
# race is named (docs/development.md); this is how a fix shows the race is gone.
#
#   RUN       go test -run pattern of the stories (required)
#   COUNT     consecutive rounds, each running the chosen stories in parallel as make test
#             does (default 20)
#   COPIES    this many copies of each chosen story at once (TestStress; PARALLEL bounds
#             how many run together), in COUNT rounds (default 1 with COPIES). Busier than
#             make test on purpose, and far quicker than rounds of one: the slowest story
#             sets the time of each round. COPIES=10 COUNT=2 is 20 runs of each story.
#   PARALLEL  stories at once (default 12)
#   KUBEBUILDER_ASSETS  the control plane and TiDB Operator to run beside (default: the
#             pinned ones from hack/envtest-assets.sh; a hack/compat.sh directory works too)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RUN:?set RUN to a go test -run pattern, e.g. RUN=TestHandOff}"
if [ -z "${KUBEBUILDER_ASSETS:-}" ]; then
	KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh etcd kube-apiserver kubectl helm tidb-operator | tail -n 1)
fi
export KUBEBUILDER_ASSETS
mkdir -p bin
log=bin/stress.log
version=$(cat "$KUBEBUILDER_ASSETS/tidb-operator-version")
if [ -n "${COPIES:-}" ]; then
	echo "stress: $COPIES copies at once of each story matching $RUN, ${COUNT:-1} rounds, beside TiDB Operator $version; log: $log" >&2
	args=(-count="${COUNT:-1}" -run '^TestStress$')
	export STRESS_RUN=$RUN STRESS_COPIES=$COPIES
else
	echo "stress: $RUN, ${COUNT:-20} rounds beside TiDB Operator $version; log: $log" >&2
	args=(-count="${COUNT:-20}" -run "$RUN")
fi
rc=0
go test "${args[@]}" -timeout 0 -parallel "${PARALLEL:-12}" -v ./test/integration/ >"$log" 2>&1 || rc=$?
# One line a story (copies counted together, subtests apart): how often it passed and failed.
grep -E '^\s*--- (PASS|FAIL|SKIP)' "$log" | grep -v -- '--- [A-Z]*: TestStress ' |
	awk '{sub(":", "", $2); name = $3; sub("^TestStress/", "", name); gsub("#[0-9]+", "", name); print name, tolower($2)}' |
	sort | uniq -c | awk '{runs[$2] = runs[$2] sprintf(" %s %d", $3, $1)} END {for (t in runs) print t ":" runs[t]}' | sort
passed=$(grep -E '^\s*--- PASS' "$log" | grep -vc -- '--- PASS: TestStress ' || true)
failed=$(grep -E '^\s*--- FAIL' "$log" | grep -vc -- '--- FAIL: TestStress ' || true)
echo "stress: $passed passed, $failed failed"
exit $rc
