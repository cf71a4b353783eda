// Package testenv starts the real control plane the integration tests and the demo run
// against: kube-apiserver and etcd (envtest, binaries from hack/envtest-assets.sh named
// by KUBEBUILDER_ASSETS), TiDB Operator's released CRDs, a serving certificate, and the
// webhook configurations that make the API server call tidb-backup-guard over TLS.
//
// Its functions return errors instead of taking a *testing.T so that the demo program
// can use them too.
package testenv
