#!/usr/bin/env bash
# A one-node Kubernetes cluster inside a network namespace and a mount namespace of its
# own (issue 29): etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy,
# CoreDNS, containerd with runc and the CNI bridge, and kubelet, all built from source. Nothing on
# the machine's network is touched: every address is the namespace's; the paths kubelet
# and containerd insist on (/var/lib/kubelet, /run/containerd, ...) are tmpfs mounts seen
# only inside the mount namespace.
#
#   hack/e2e/node.sh BIN_DIR WORK_DIR -- COMMAND...
#
# BIN_DIR holds every binary and the images (images/*.tar: hack/e2e/assets.sh). COMMAND
# runs inside the namespaces once the node is Ready, with KUBECONFIG set; the cluster
# stops when it exits, and its exit code is the script's.
set -euo pipefail
bin=$1 work=$2
shift 2
[ "${1:-}" = "--" ] && shift
if [ -z "${E2E_IN_NAMESPACE:-}" ]; then
	# A PID namespace too: when this script (its process 1) exits, the kernel kills every
	# process left in it, containerd's shims and the pods' processes included.
	exec env E2E_IN_NAMESPACE=1 unshare --net --mount --propagation private --pid --mount-proc --fork -- "$0" "$bin" "$work" -- "$@"
fi

log() { echo "[e2e-node $(date +%T)] $*" >&2; }
node=e2e-node
ip=10.99.0.1
mkdir -p "$work"
work=$(cd "$work" && pwd)
rm -rf "$work/etcd" "$work/containerd" "$work/pki" # a cluster of its own every run
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for _ in $(seq 20); do
		alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.5
	done
	kill -9 -1 2>/dev/null || true # everything else in this PID namespace: shims, pods
	wait 2>/dev/null || true
	# kubelet's cgroups live in the machine's hierarchy: remove what it made.
	for c in /sys/fs/cgroup/*/kubepods; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true; done
}
trap cleanup EXIT

# The network: loopback, with one more address for the node (kubelet refuses a node IP in
# 127.0.0.0/8; the machine's kernel has no dummy interfaces).
ip link set lo up
ip addr add $ip/32 dev lo
# A route for Service addresses, so that the API server's own connections to a Service (the
# webhook's) get as far as kube-proxy's OUTPUT rules, which send them to a pod on cni0. A
# real node has a default route for that; this namespace has no other way out.
ip route add 10.96.0.0/16 dev lo

# The fixed paths, private to this mount namespace.
for d in /var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /etc/cni /opt/cni /var/lib/cni /run/netns; do
	mkdir -p "$d"
	mount -t tmpfs tmpfs "$d"
done
mount --make-shared /run/netns 2>/dev/null || true

# Certificates: one CA for every client and server.
pki=$work/pki
mkdir -p "$pki"
cert() { # name CN O [SANs]
	local name=$1 cn=$2 o=$3 san=${4:-}
	openssl req -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "/CN=$cn${o:+/O=$o}" -out "$pki/$name.csr" 2>/dev/null
	local ext="$pki/$name.ext"
	echo "basicConstraints=CA:FALSE" >"$ext"
	echo "keyUsage=digitalSignature,keyEncipherment" >>"$ext"
	echo "extendedKeyUsage=serverAuth,clientAuth" >>"$ext"
	[ -n "$san" ] && echo "subjectAltName=$san" >>"$ext"
	openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
}
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -subj "/CN=e2e-ca" -days 2 -out "$pki/ca.crt" 2>/dev/null
cert apiserver kube-apiserver "" "IP:$ip,IP:127.0.0.1,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert admin admin system:masters
cert kubelet-client kube-apiserver-kubelet-client system:masters
cert node "system:node:$node" system:nodes
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
kubeconfig() { # file cert
	cat >"$1" <<KC
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "https://$ip:6443", certificate-authority: "$pki/ca.crt"}}]
users: [{name: u, user: {client-certificate: "$pki/$2.crt", client-key: "$pki/$2.key"}}]
contexts: [{name: e2e, context: {cluster: e2e, user: u}}]
current-context: e2e
KC
}
kubeconfig "$work/admin.kubeconfig" admin
kubeconfig "$work/node.kubeconfig" node
export KUBECONFIG=$work/admin.kubeconfig

start() { # name args...
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	log "$name started (log: $work/$name.log)"
}

start etcd "$bin/etcd" --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:2379 \
	--advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380
start kube-apiserver "$bin/kube-apiserver" --etcd-servers http://127.0.0.1:2379 \
	--secure-port 6443 --bind-address 0.0.0.0 --advertise-address $ip \
	--tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
	--service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
	--service-account-issuer https://kubernetes.default.svc --service-cluster-ip-range 10.96.0.0/16 \
	--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
	--kubelet-client-certificate "$pki/kubelet-client.crt" --kubelet-client-key "$pki/kubelet-client.key" \
	--kubelet-preferred-address-types InternalIP
for _ in $(seq 120); do "$bin/kubectl" get --raw /readyz >/dev/null 2>&1 && break; sleep 0.5; done
"$bin/kubectl" get --raw /readyz >/dev/null
log "kube-apiserver ready"
start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$KUBECONFIG" \
	--service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" --use-service-account-credentials=false \
	--leader-elect=false --secure-port 0 --controllers '*,-nodeipam'
start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$KUBECONFIG" --leader-elect=false --secure-port 0
# Cluster DNS: CoreDNS with its kubernetes plugin, as a cluster's kube-dns Service runs it,
# here a process on the node's address (kubelet gives pods nameserver $ip). TiDB Operator
# and BR reach PD by its Service name, <cluster>-pd.<namespace>:2379.
cat >"$work/Corefile" <<CF
.:53 {
    bind $ip
    errors
    kubernetes cluster.local {
        kubeconfig $KUBECONFIG e2e
    }
}
CF
start coredns "$bin/coredns" -conf "$work/Corefile"

# containerd, runc and the CNI bridge.
mkdir -p /opt/cni/bin /etc/cni/net.d
for p in bridge host-local loopback portmap; do cp "$bin/$p" /opt/cni/bin/; done
cat >/etc/cni/net.d/10-e2e.conflist <<CNI
{"cniVersion": "1.0.0", "name": "e2e", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
CNI
cat >"$work/containerd.toml" <<CT
version = 3
root = "$work/containerd/root"
state = "/run/containerd"
[grpc]
  address = "/run/containerd/containerd.sock"
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "registry.k8s.io/pause:e2e"
[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/opt/cni/bin"]
    conf_dir = "/etc/cni/net.d"
  [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
      BinaryName = "$bin/runc"
      SystemdCgroup = false
[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins."io.containerd.nri.v1.nri"]
  disable = true
CT
PATH=$bin:$PATH start containerd "$bin/containerd" --config "$work/containerd.toml"
for _ in $(seq 60); do "$bin/ctr" --address /run/containerd/containerd.sock version >/dev/null 2>&1 && break; sleep 0.5; done
for img in "$bin"/images/*.tar; do
	"$bin/ctr" --address /run/containerd/containerd.sock -n k8s.io images import --local=true "$img" >/dev/null
	log "imported $(basename "$img")"
done

cat >"$work/kubelet.yaml" <<KL
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$pki/ca.crt"}
authorization: {mode: Webhook}
readOnlyPort: 0
healthzPort: 0
port: 10250
address: $ip
clusterDomain: cluster.local
clusterDNS: [$ip]
resolvConf: ""
staticPodPath: ""
KL
PATH=$bin:$PATH start kubelet "$bin/kubelet" --config "$work/kubelet.yaml" --kubeconfig "$work/node.kubeconfig" \
	--hostname-override $node --node-ip $ip --root-dir /var/lib/kubelet
start kube-proxy "$bin/kube-proxy" --kubeconfig "$KUBECONFIG" --proxy-mode iptables --hostname-override $node \
	--cluster-cidr 10.88.0.0/16 --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256
for _ in $(seq 120); do
	"$bin/kubectl" get node $node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True && break
	sleep 1
done
"$bin/kubectl" get node $node -o wide
log "node Ready; running: $*"
"$@"
