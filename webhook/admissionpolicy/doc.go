// Package admissionpolicy renders the CEL mode of the admission side: the same log-backup
// defaults and policy checks as the webhooks, as MutatingAdmissionPolicies and
// ValidatingAdmissionPolicies that run inside the API server (Kubernetes 1.36 and later
// serve MutatingAdmissionPolicy v1).
//
// The CEL is generated from the defaults package's constants (field names, the CRD's
// snapshot defaults, the opt-out annotation, the overflow bound) and reads the configured
// log defaults from a params ConfigMap, so one set of policies serves every
// configuration. What CEL cannot express the same way is listed in docs/cel-mode.md, each row
// tested by the differential suite (test/integration: webhooks and policies given the
// same corpus through one API server).
package admissionpolicy
