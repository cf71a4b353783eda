package defaults

import (
	"maps"
	"slices"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

// Resolver gives the defaulting configuration that holds in a namespace. The webhooks and
// the reconciler both ask it, so a namespace's override means the same to both.
type Resolver interface {
	For(namespace string) Config
}

// For makes a Config a Resolver with no overrides: every namespace gets c.
func (c Config) For(string) Config { return c }

// NamespacePolicies is a Resolver with per-namespace log defaults, read from the data of
// one ConfigMap: each key a namespace, each value a policy in the CRD's field names
// (YAML or JSON), for example
//
//	team-a: |
//	  minRetryDuration: 1m
//	  maxRetryTimes: 3
//
// A field left out keeps the server's default. An entry that cannot be used (bad YAML, an
// unknown field, a value the webhook would reject, a key that is not a namespace name)
// is reported by Update and changes nothing: the namespace keeps its last good policy,
// so a typo never changes behaviour silently. An entry that is removed returns its
// namespace to the server's defaults; that is a deliberate edit, not an error.
//
// It is safe for concurrent use.
type NamespacePolicies struct {
	base Config

	mu   sync.RWMutex
	good map[string]Policy // the last good policy of each namespace with an entry
	raw  map[string]string // the entry each good policy was read from
	bad  map[string]string // the entries last rejected (namespace -> raw value)
}

// NewNamespacePolicies returns policies that give base to every namespace until Update.
func NewNamespacePolicies(base Config) *NamespacePolicies {
	return &NamespacePolicies{base: base, good: map[string]Policy{}, raw: map[string]string{}, bad: map[string]string{}}
}

// For returns the server's configuration with the namespace's log defaults, if it has an
// override.
func (n *NamespacePolicies) For(namespace string) Config {
	n.mu.RLock()
	defer n.mu.RUnlock()
	c := n.base
	if p, ok := n.good[namespace]; ok {
		c.LogDefaults = p
	}
	return c
}

// Override is one namespace's effective override, as Overrides lists it.
type Override struct {
	Namespace string `json:"namespace"`
	Policy    string `json:"policy"`
	// Stale: the namespace's current entry was rejected; Policy is the last good one.
	Stale bool `json:"stale,omitempty"`
}

// Overrides lists the namespaces with an override in effect, sorted.
func (n *NamespacePolicies) Overrides() []Override {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]Override, 0, len(n.good))
	for _, ns := range slices.Sorted(maps.Keys(n.good)) {
		_, stale := n.bad[ns]
		out = append(out, Override{Namespace: ns, Policy: n.good[ns].String(), Stale: stale})
	}
	return out
}

// Update reads a new version of the ConfigMap's data. Entries that parse and validate
// replace the namespace's policy; the errors of the others are returned, with paths under
// fldPath (data[<namespace>]...), and those namespaces keep what they had. Namespaces
// without an entry return to the server's defaults. An entry already rejected with the
// same value is reported again: the caller decides how often to tell.
func (n *NamespacePolicies) Update(data map[string]string, fldPath *field.Path) field.ErrorList {
	var errs field.ErrorList
	good := map[string]Policy{}
	raw := map[string]string{}
	bad := map[string]string{}
	n.mu.RLock()
	for _, ns := range slices.Sorted(maps.Keys(data)) {
		value := data[ns]
		p, entryErrs := n.base.ParseOverride(ns, value, fldPath.Key(ns))
		if len(entryErrs) == 0 {
			good[ns], raw[ns] = p, value
			continue
		}
		errs = append(errs, entryErrs...)
		bad[ns] = value
		if last, ok := n.good[ns]; ok {
			good[ns], raw[ns] = last, n.raw[ns]
		}
	}
	n.mu.RUnlock()
	n.mu.Lock()
	n.good, n.raw, n.bad = good, raw, bad
	n.mu.Unlock()
	return errs
}

// overrideFields is an override as written in the ConfigMap: the policy's fields, and no
// others (a misspelt field is an error, not a silently ignored line).
type overrideFields struct {
	MinRetryDuration *string `json:"minRetryDuration,omitempty"`
	MaxRetryTimes    *int64  `json:"maxRetryTimes,omitempty"`
	RetryTimeout     *string `json:"retryTimeout,omitempty"`
}

// ParseOverride reads one namespace's override: the namespace name must be valid, the
// value a policy whose fields it sets replace c's log defaults, and the result must pass
// the same validation as a policy on an object (Config.Validate), so that no namespace
// can get defaults the webhook would reject.
func (c Config) ParseOverride(namespace, value string, fldPath *field.Path) (Policy, field.ErrorList) {
	if msgs := validation.IsDNS1123Label(namespace); len(msgs) > 0 {
		return Policy{}, field.ErrorList{field.Invalid(fldPath, namespace, "the key must be a namespace name: "+msgs[0])}
	}
	var f overrideFields
	if err := yaml.UnmarshalStrict([]byte(value), &f); err != nil {
		return Policy{}, field.ErrorList{field.Invalid(fldPath, value, "must be a retry policy (minRetryDuration, maxRetryTimes, retryTimeout): "+err.Error())}
	}
	fields := c.LogDefaults.Fields()
	if f.MinRetryDuration == nil && f.MaxRetryTimes == nil && f.RetryTimeout == nil {
		return Policy{}, field.ErrorList{field.Required(fldPath, "sets none of minRetryDuration, maxRetryTimes, retryTimeout")}
	}
	if f.MinRetryDuration != nil {
		fields.MinRetryDuration = f.MinRetryDuration
	}
	if f.MaxRetryTimes != nil {
		fields.MaxRetryTimes = f.MaxRetryTimes
	}
	if f.RetryTimeout != nil {
		fields.RetryTimeout = f.RetryTimeout
	}
	nc := c
	nc.LogDefaults = Policy{}
	if errs, _ := nc.ValidatePolicy(fields, fldPath); len(errs) > 0 {
		return Policy{}, errs
	}
	minD, _ := ParseDuration(*fields.MinRetryDuration)
	timeout, _ := ParseDuration(*fields.RetryTimeout)
	p := Policy{MinRetryDuration: minD, MaxRetryTimes: *fields.MaxRetryTimes, RetryTimeout: timeout}
	return p, nil
}
