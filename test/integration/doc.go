// Package integration holds the integration suites that run tidb-backup-guard against a real
// kube-apiserver and etcd (see package testenv): the API server calls the webhooks over
// TLS through real webhook configurations, exactly as in a cluster.
package integration
