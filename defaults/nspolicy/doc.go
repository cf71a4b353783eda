// Package nspolicy keeps the namespace overrides of the log defaults
// (defaults.NamespacePolicies, which the webhooks and the reconciler ask) in step with the
// namespace-policies ConfigMap in the server's namespace.
package nspolicy
