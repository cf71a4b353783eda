#!/usr/bin/env bash
# Builds the binaries the tests and the demo need -- kube-apiserver, kubectl, etcd, helm,
# staticcheck, TiDB Operator's controller-manager, promtool and gotestsum -- from the Go
# module proxy, once, into a cache directory, and prints that directory as the last line
# of stdout. TiDB Operator's released CRDs (manifests/crd/v1 of its module) are copied
# beside them, into tidb-operator-crds/. Progress goes to stderr.
#
# The versions come from the tools modules under hack/tools/ (their go.mod files are the
# single source of truth) and are part of the cache path, so a version bump builds anew
# and an unchanged checkout reuses what is there.
#
# Arguments name what to build (etcd kube-apiserver kubectl helm staticcheck tidb-operator
# promtool gotestsum); none builds everything. `make demo` builds only what the demo runs.
#
#   ASSETS_CACHE   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tidb-backup-guard)
set -euo pipefail

wanted=" ${*:-etcd kube-apiserver kubectl helm staticcheck tidb-operator promtool gotestsum} "
want() { [[ $wanted == *" $1 "* ]]; }

here=$(cd "$(dirname "$0")" && pwd)
tools="$here/tools"
cache_root=${ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tidb-backup-guard}

modversion() { (cd "$tools/$1" && go list -m -f '{{.Version}}' "$2"); }

k8s=$(modversion kube k8s.io/kubernetes)
etcd=$(modversion etcd go.etcd.io/etcd/server/v3)
helm=$(modversion helm helm.sh/helm/v3)
staticcheck=$(modversion lint honnef.co/go/tools)
tidbop=$(modversion tidb-operator github.com/pingcap/tidb-operator)
prom=$(modversion prometheus github.com/prometheus/prometheus)
gotestsum=$(modversion gotestsum gotest.tools/gotestsum)
dir="$cache_root/assets/k8s-$k8s-etcd-$etcd-helm-$helm-staticcheck-$staticcheck-tidb-operator-$tidbop"
mkdir -p "$dir"

log() { printf '[envtest-assets %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Kubernetes binaries report their version as the release's build does (a plain go build
# says v0.0.0-master): helm and kubectl compare it with a chart's kubeVersion.
k8s_ldflags="-X k8s.io/component-base/version.gitVersion=$k8s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$k8s" | cut -d. -f2) -X k8s.io/client-go/pkg/version.gitVersion=$k8s"

# build NAME MODULE_DIR PACKAGE [GO BUILD FLAGS...]: builds into a temporary name and
# renames, so an interrupted build never leaves a half-written binary that looks cached.
build() {
	local name=$1 module=$2 pkg=$3
	shift 3
	# A Kubernetes binary cached before the version was stamped says v0.0.0-master: rebuild it.
	case $name in
	kube-apiserver) [ -x "$dir/$name" ] && ! "$dir/$name" --version 2>/dev/null | grep -q "$k8s" && rm -f "$dir/$name" ;;
	kubectl) [ -x "$dir/$name" ] && ! "$dir/$name" version --client 2>/dev/null | grep -q "$k8s" && rm -f "$dir/$name" ;;
	esac
	if [ -x "$dir/$name" ]; then
		log "$name: cached"
		return
	fi
	log "$name: building $pkg (first time only; kube-apiserver takes about 5-8 minutes on 2 cores)"
	local start=$SECONDS
	# A heartbeat, so a long quiet compile does not look like a hang.
	( while sleep 30; do log "$name: still building ($((SECONDS - start))s)"; done ) &
	local beat=$!
	trap 'kill $beat 2>/dev/null' RETURN
	(cd "$tools/$module" && go build -trimpath "$@" -o "$dir/.$name.tmp" "$pkg")
	mv "$dir/.$name.tmp" "$dir/$name"
	log "$name: built in $((SECONDS - start))s"
}

want etcd && build etcd etcd go.etcd.io/etcd/server/v3
want kube-apiserver && build kube-apiserver kube k8s.io/kubernetes/cmd/kube-apiserver -ldflags "$k8s_ldflags"
want kubectl && build kubectl kube k8s.io/kubernetes/cmd/kubectl -ldflags "$k8s_ldflags"
want helm && build helm helm helm.sh/helm/v3/cmd/helm
want staticcheck && build staticcheck lint honnef.co/go/tools/cmd/staticcheck
want tidb-operator && build tidb-controller-manager tidb-operator github.com/pingcap/tidb-operator/cmd/controller-manager
# Named after its version and build (not part of the directory's name, so adding it built
# nothing else anew): test/alerts runs the one it finds.
# promtool is built without Prometheus's service-discovery plugins (-tags remove_all_sd):
# test/alerts only runs `promtool check rules` and `test rules`, which need none of them.
# Measured: 18% fewer packages (1,117 of 1,364), a 77 MB binary instead of 123 MB, and a
# shorter first build (docs/development.md). Testing the rules in-process is not an
# option: promtool's rule-test runner is its main package, not a library.
if want promtool; then
	[ -x "$dir/promtool-$prom-nosd" ] || rm -f "$dir"/promtool-*
	build "promtool-$prom-nosd" prometheus github.com/prometheus/prometheus/cmd/promtool -tags remove_all_sd
fi
# gotestsum runs make test's go test and lists its slowest tests; the link names the
# version this checkout pins.
if want gotestsum; then
	build "gotestsum-$gotestsum" gotestsum gotest.tools/gotestsum
	ln -sfn "gotestsum-$gotestsum" "$dir/gotestsum"
fi

# TiDB Operator's CRDs, as released in its module (the same version as its binary).
if want tidb-operator && [ ! -f "$dir/tidb-operator-crds/pingcap.com_backups.yaml" ]; then
	src=$(cd "$tools/tidb-operator" && go mod download github.com/pingcap/tidb-operator && go list -m -f '{{.Dir}}' github.com/pingcap/tidb-operator)
	rm -rf "$dir/.tidb-operator-crds.tmp"
	cp -r "$src/manifests/crd/v1" "$dir/.tidb-operator-crds.tmp"
	chmod -R u+w "$dir/.tidb-operator-crds.tmp"
	mv "$dir/.tidb-operator-crds.tmp" "$dir/tidb-operator-crds"
	log "tidb-operator-crds: copied from $src/manifests/crd/v1"
fi
if want tidb-operator; then
	echo "$tidbop" >"$dir/tidb-operator-version"
	log "TiDB Operator $tidbop: $dir/tidb-controller-manager and $dir/tidb-operator-crds/"
fi

echo "$dir"
