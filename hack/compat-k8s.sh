#!/usr/bin/env bash
# make test-compat, Kubernetes part: the webhook and chart suites against the oldest
# Kubernetes the chart claims (COMPAT_K8S, default v1.30.14). It builds that version's
# kube-apiserver and kubectl once, like the current ones (k8s.io/kubernetes with its
# staging modules replaced by the matching v0.x versions, in a throwaway tools module),
# caches them, and runs the suites with KUBEBUILDER_ASSETS pointing at a directory that
# holds them beside the shared etcd, helm and TiDB Operator. The exit code says whether
# they passed.
#
#   COMPAT_K8S_RUN   the go test -run pattern (default: the webhook and chart suites)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
k8s=${COMPAT_K8S:-v1.30.14}
run=${COMPAT_K8S_RUN:-'TestWebhooksThroughTheAPIServer|TestFullyPopulatedBackupKeepsEveryField|TestUpdateOfAnOldObjectWithABadPolicy|TestWebhookIsReallyCalled|TestChartLintAndTemplate|TestChartSchemaRejects|TestChartObjectsAccepted|TestChartWebhooksMatchTheTestedOnes|TestChartRBACIsMinimal|TestChartRBACIsSufficient|TestChartPodIsRestricted|TestChartSetsGOMEMLIMIT|TestChartAdmissionModes|TestChartAutoModeOnTheCluster'}

base=$("$here/envtest-assets.sh" | tail -n 1) || exit 1
cache_root=${ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tidb-backup-guard}
log() { printf '[compat-k8s %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

dir="$cache_root/compat/k8s-$k8s"
mkdir -p "$dir"
if [ ! -x "$dir/kube-apiserver" ] || [ ! -x "$dir/kubectl" ]; then
	staging="v0.${k8s#v1.}"
	mod=$(mktemp -d)
	{
		printf 'module compatk8s\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$k8s"
		for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap \
			code-generator component-base component-helpers controller-manager cri-api cri-client csi-translation-lib \
			dynamic-resource-allocation endpointslice kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler \
			kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver legacy-cloud-providers; do
			printf '\tk8s.io/%s => k8s.io/%s %s\n' "$m" "$m" "$staging"
		done
		printf ')\n'
	} >"$mod/go.mod"
	printf 'package compatk8s\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >"$mod/tools.go"
	ldflags="-X k8s.io/component-base/version.gitVersion=$k8s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$k8s" | cut -d. -f2) -X k8s.io/client-go/pkg/version.gitVersion=$k8s"
	log "$k8s: building kube-apiserver and kubectl (about 10 CPU-minutes)"
	start=$SECONDS
	( while sleep 30; do log "$k8s: still building ($((SECONDS - start))s)"; done ) &
	beat=$!
	if ! (cd "$mod" && go mod tidy >"$dir/build.log" 2>&1 &&
		go build -trimpath -ldflags "$ldflags" -o "$dir/.kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >>"$dir/build.log" 2>&1 &&
		go build -trimpath -ldflags "$ldflags" -o "$dir/.kubectl.tmp" k8s.io/kubernetes/cmd/kubectl >>"$dir/build.log" 2>&1); then
		kill $beat 2>/dev/null
		log "$k8s: does not build; see $dir/build.log"
		rm -rf "$mod"
		exit 1
	fi
	kill $beat 2>/dev/null
	mv "$dir/.kube-apiserver.tmp" "$dir/kube-apiserver"
	mv "$dir/.kubectl.tmp" "$dir/kubectl"
	rm -rf "$mod"
	log "$k8s: built in $((SECONDS - start))s"
fi
for f in etcd helm staticcheck tidb-controller-manager tidb-operator-crds tidb-operator-version; do
	ln -sfn "$base/$f" "$dir/$f"
done
log "$k8s: running the webhook and chart suites"
if (cd "$root" && KUBEBUILDER_ASSETS="$dir" go test -count=1 -timeout 30m ./test/integration/ -run "$run" -v >"$dir/test.log" 2>&1); then
	echo "Kubernetes $k8s: passed ($(grep -c '^--- PASS' "$dir/test.log") tests; log: $dir/test.log)"
else
	echo "Kubernetes $k8s: failed: $(grep -E '^--- FAIL' "$dir/test.log" | tr '\n' ' ' | cut -c1-300) (see $dir/test.log)"
	exit 1
fi
