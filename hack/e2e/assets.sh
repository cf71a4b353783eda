#!/usr/bin/env bash
# Builds the one-node cluster of make e2e from source, once, into a cache directory, and
# prints that directory as the last line of stdout (progress goes to stderr):
#   - kubelet, kube-controller-manager, kube-scheduler and kube-proxy from k8s.io/kubernetes
#     (module hack/tools/node, the release hack/tools/kube pins for kube-apiserver);
#   - containerd, its runc shim and ctr; runc (cgo, with libseccomp: Debian's
#     libseccomp-dev); the CNI plugins bridge, host-local, loopback and portmap;
#   - CoreDNS, the cluster's DNS;
#   - links to the control plane of hack/envtest-assets.sh (etcd, kube-apiserver, kubectl,
#     helm) and TiDB Operator's CRDs; TiDB Operator's chart and its backup RBAC manifest;
#   - TiDB Operator's controller-manager and backup-manager, built static (no base image);
#   - images/, as tarballs that hack/e2e/node.sh imports into containerd: the sandbox image
#     (test/e2e/pause), the server's image (hack/image reads the Dockerfile), and the three
#     images TiDB Operator runs under their own names: pingcap/tidb-operator (the
#     controller-manager), pingcap/tidb-backup-manager (the backup-manager as the
#     entrypoint, without the release image's shell wrapper) and pingcap/br (BR played by
#     test/e2e/br, and busybox as the /bin/sh and cp of the Job's init container: Debian's
#     busybox-static).
# The versions below and the tools modules' go.mod files are the whole pin set, and part
# of the cache path.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
containerd=v2.4.2 runc=v1.5.3 cni=v1.10.0 coredns=v1.15.0
control=$("$here/envtest-assets.sh" etcd kube-apiserver kubectl helm tidb-operator | tail -n 1)
k8s=$(cd "$here/tools/node" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
tidbop=$(cat "$control/tidb-operator-version")
dir="${ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tidb-backup-guard}/e2e/k8s-$k8s-containerd-$containerd-runc-$runc-cni-$cni"
mkdir -p "$dir/images"
log() { printf '[e2e-assets %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
k8s_ldflags="-X k8s.io/component-base/version.gitVersion=$k8s -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$k8s" | cut -d. -f2) -X k8s.io/client-go/pkg/version.gitVersion=$k8s"

# build NAME CMD...: runs CMD (which writes $dir/.NAME.tmp) unless NAME is there.
build() {
	local name=$1
	shift
	[ -x "$dir/$name" ] && return
	log "$name: building"
	local start=$SECONDS
	"$@"
	mv "$dir/.$name.tmp" "$dir/$name"
	log "$name: built in $((SECONDS - start))s"
}
kube() { (cd "$here/tools/node" && go build -trimpath -ldflags "$k8s_ldflags" -o "$dir/.$1.tmp" "k8s.io/kubernetes/cmd/$1"); }
install() { # NAME PACKAGE@VERSION [ENV...]
	local name=$1 pkg=$2
	shift 2
	local gobin
	gobin=$(mktemp -d)
	env GOBIN="$gobin" "$@" go install -trimpath "$pkg"
	mv "$gobin/$(basename "${pkg%@*}")" "$dir/.$name.tmp"
	rm -rf "$gobin"
}
for c in kubelet kube-controller-manager kube-scheduler kube-proxy; do build $c kube $c; done
build containerd install containerd github.com/containerd/containerd/v2/cmd/containerd@$containerd CGO_ENABLED=0
build containerd-shim-runc-v2 install containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$containerd CGO_ENABLED=0
build ctr install ctr github.com/containerd/containerd/v2/cmd/ctr@$containerd CGO_ENABLED=0
if [ ! -x "$dir/runc" ] && [ ! -e /usr/include/seccomp.h ]; then
	log "runc needs libseccomp's headers: apt-get install libseccomp-dev"
	exit 1
fi
build runc install runc github.com/opencontainers/runc@$runc CGO_ENABLED=1 GOFLAGS=-tags=seccomp,urfave_cli_no_docs
for p in main/bridge ipam/host-local main/loopback meta/portmap; do
	build "$(basename $p)" install "$(basename $p)" "github.com/containernetworking/plugins/plugins/$p@$cni" CGO_ENABLED=0
done
build coredns install coredns github.com/coredns/coredns@$coredns CGO_ENABLED=0
# TiDB Operator's programs, static: the controller-manager of make test is built with cgo.
tidb() { (cd "$here/tools/$2" && CGO_ENABLED=0 go build -trimpath -o "$dir/.$1.tmp" "github.com/pingcap/tidb-operator/cmd/$3"); }
build "tidb-controller-manager-$tidbop" tidb "tidb-controller-manager-$tidbop" tidb-operator controller-manager
build "tidb-backup-manager-$tidbop" tidb "tidb-backup-manager-$tidbop" backup-manager backup-manager
if [ ! -x /bin/busybox ]; then
	log "the BR image's shell is Debian's busybox-static: apt-get install busybox-static"
	exit 1
fi
for f in etcd kube-apiserver kubectl helm tidb-operator-crds; do ln -sfn "$control/$f" "$dir/$f"; done
src=$(cd "$here/tools/tidb-operator" && go list -m -f '{{.Dir}}' github.com/pingcap/tidb-operator)
rm -rf "$dir/tidb-operator-chart" && cp -r "$src/charts/tidb-operator" "$dir/tidb-operator-chart" && chmod -R u+w "$dir/tidb-operator-chart"
cp "$src/manifests/backup/backup-rbac.yaml" "$dir/tidb-operator-backup-rbac.yaml" && chmod u+w "$dir/tidb-operator-backup-rbac.yaml"

# The images are rebuilt every time: the server's is this checkout's.
(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$dir/.pause" ./test/e2e/pause && CGO_ENABLED=0 go build -trimpath -o "$dir/.br" ./test/e2e/br)
# The images TiDB Operator names: its chart's defaults for this version, and the BR image
# of a TidbCluster at v8.5.0 (pingcap/br:<TiKV's version>).
(cd "$here/image" && go build -o "$dir/.image" . &&
	"$dir/.image" -bin "$dir/.pause" -out "$dir/images/pause.tar" -tag registry.k8s.io/pause:e2e &&
	"$dir/.image" -root "$root" -out "$dir/images/tidb-backup-guard.tar" -tag tidb-backup-guard:e2e -version e2e &&
	"$dir/.image" -add "$dir/tidb-controller-manager-$tidbop:/usr/local/bin/tidb-controller-manager" \
		-out "$dir/images/tidb-operator.tar" -tag "pingcap/tidb-operator:$tidbop" &&
	"$dir/.image" -add "$dir/tidb-backup-manager-$tidbop:/tidb-backup-manager" -user 0:0 \
		-out "$dir/images/tidb-backup-manager.tar" -tag "pingcap/tidb-backup-manager:$tidbop" &&
	"$dir/.image" -add "$dir/.br:/br" -add /bin/busybox:/bin/sh -add /bin/busybox:/bin/cp -entrypoint /br -user 0:0 \
		-out "$dir/images/br.tar" -tag pingcap/br:v8.5.0) >&2
mv "$dir/.pause" "$dir/pause"
rm -f "$dir/.br" "$dir/.image"
echo "$dir"
