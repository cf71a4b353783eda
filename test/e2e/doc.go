// Package e2e holds the end-to-end tests of make e2e: the chart installed with helm onto a
// one-node Kubernetes cluster built from source (hack/e2e), its pods run by containerd and
// runc from the image hack/image builds, the API server calling the webhook through the
// chart's Service (kube-proxy), and leader election across real pods; and a failed log
// start retried through real pods beside TiDB Operator installed from its own chart, its Jobs
// running its real backup-manager with BR played by test/e2e/br. The tests run inside
// the cluster's own network namespace (hack/e2e/node.sh), so they carry the build tag e2e
// and never run in make test.
package e2e
