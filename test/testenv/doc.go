// Package testenv starts the real control plane the integration tests and the demo run
// against: kube-apiserver and etcd (envtest, binaries from hack/envtest-assets.sh named
// by KUBEBUILDER_ASSETS), TiDB Operator's released CRDs, a serving certificate, and the
// webhook configurations that make the API server call tidb-backup-guard over TLS.
//
// Beside it: TiDB Operator's real controller-manager (tidboperator.go), whose every
// request passes an HTTP proxy that records its writes and can hold chosen ones
// (apiproxy.go: how a race with its writes is made to happen in a chosen order); and
// Cluster (cluster.go, resume.go), which plays what envtest lacks: the pods' outcomes, the
// Job controller and the garbage collector. Settle (settle.go) is how every story ends:
// its Backups stop changing.
//
// Its functions return errors instead of taking a *testing.T so that the demo program
// can use them too.
package testenv
