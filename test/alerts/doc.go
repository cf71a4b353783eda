// Package alerts tests the chart's PrometheusRule with Prometheus's own rule tester
// (promtool test rules, built by hack/envtest-assets.sh): each alert on series that make
// it fire and on series that must not.
package alerts
