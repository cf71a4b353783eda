package defaults

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Defaulting is the outcome of FillLog.
type Defaulting struct {
	// Result is the policy after defaulting.
	Result Fields
	// Set names the JSON fields that were absent and got the log default.
	Set []string
	// Replaced names the JSON fields that held the CRD's snapshot default and got the log
	// default instead.
	Replaced []string
	// Warnings say what was set or replaced, and which kept fields look like schema
	// defaults; each is a complete admission warning, path included.
	Warnings []string
}

// Changed reports whether the policy differs from what was on the object.
func (d Defaulting) Changed() bool { return len(d.Set)+len(d.Replaced) > 0 }

// FillLog computes the policy a log backup gets when it is created.
//
// Absent fields get the configured log defaults; values the user set are kept. One
// exception, the schema-default trap: the API server fills the CRD's snapshot defaults
// (300s / 2 / 30m) into any policy object before admission, and Go clients always send
// one, so a policy holding exactly those values is indistinguishable from "unset". Unless
// c.ReplaceSchemaDefaults is off or keepSchemaDefaults (the object's opt-out annotation)
// is set, a policy whose fields all hold those values (missing fields aside) is treated
// as unset and gets the log defaults. A policy that differs in some field is kept, with
// a hint for each field that holds a snapshot default, since the user evidently wrote
// part of it. Malformed values are never touched: validation reports them.
func (c Config) FillLog(cur Fields, keepSchemaDefaults bool, fldPath *field.Path) Defaulting {
	def := c.LogDefaults.Fields()
	out := Defaulting{Result: cur}
	replace := c.ReplaceSchemaDefaults && !keepSchemaDefaults
	if replace && matchesSchemaDefaults(cur) {
		for _, f := range PolicyFields {
			switch {
			case !hasField(f, cur):
				setField(f, &out.Result, def)
				out.Set = append(out.Set, f)
			case !sameValue(f, cur, def):
				setField(f, &out.Result, def)
				out.Replaced = append(out.Replaced, f)
			}
		}
		if len(out.Replaced) > 0 {
			out.Warnings = []string{fmt.Sprintf(
				"%s: replaced the CRD's snapshot defaults with the log-backup policy %s", fldPath, c.LogDefaults)}
		} else if len(out.Set) > 0 {
			out.Warnings = []string{fmt.Sprintf("%s: defaulted %s from the log-backup policy %s",
				fldPath, joinFields(out.Set), c.LogDefaults)}
		}
		return out
	}
	var hints []string
	for _, f := range PolicyFields {
		if !hasField(f, cur) {
			setField(f, &out.Result, def)
			out.Set = append(out.Set, f)
			continue
		}
		if replace && eqField(f, cur, SchemaDefaults) && !sameValue(f, cur, def) {
			hints = append(hints, fmt.Sprintf(
				"%s: %s is the CRD's snapshot default, kept; the log default is %s",
				fldPath.Child(f), fieldString(f, cur), fieldString(f, def)))
		}
	}
	if len(out.Set) > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%s: defaulted %s from the log-backup policy %s",
			fldPath, joinFields(out.Set), c.LogDefaults))
	}
	out.Warnings = append(out.Warnings, hints...)
	return out
}

// matchesSchemaDefaults reports a non-empty policy whose every field holds the CRD's
// snapshot default literally. Present fields only: a policy that matched with one field
// missing would match again once that field is filled, so defaulting would not be
// idempotent (found by fuzzing).
func matchesSchemaDefaults(f Fields) bool {
	if f.IsEmpty() {
		return false
	}
	for _, name := range PolicyFields {
		if hasField(name, f) && !eqField(name, f, SchemaDefaults) {
			return false
		}
	}
	return true
}

// PolicyFields lists the policy's JSON field names in the order patches and messages use.
var PolicyFields = []string{FieldMinRetryDuration, FieldMaxRetryTimes, FieldRetryTimeout}

func hasField(name string, f Fields) bool { return f.Value(name) != nil }

// eqField compares one field; Value returns comparable values (string, int64 or nil).
func eqField(name string, a, b Fields) bool { return a.Value(name) == b.Value(name) }

// sameValue compares one field by meaning: "300s" and "5m" are the same duration.
func sameValue(name string, a, b Fields) bool {
	as, aok := a.Value(name).(string)
	bs, bok := b.Value(name).(string)
	if aok && bok {
		ad, aerr := time.ParseDuration(as)
		bd, berr := time.ParseDuration(bs)
		if aerr == nil && berr == nil {
			return ad == bd
		}
	}
	return eqField(name, a, b)
}

func setField(name string, dst *Fields, src Fields) {
	switch name {
	case FieldMinRetryDuration:
		dst.MinRetryDuration = src.MinRetryDuration
	case FieldMaxRetryTimes:
		dst.MaxRetryTimes = src.MaxRetryTimes
	default:
		dst.RetryTimeout = src.RetryTimeout
	}
}

// Value returns the named field's value as JSON would hold it (string or int64), or nil.
func (f Fields) Value(name string) any {
	switch name {
	case FieldMinRetryDuration:
		if f.MinRetryDuration != nil {
			return *f.MinRetryDuration
		}
	case FieldMaxRetryTimes:
		if f.MaxRetryTimes != nil {
			return *f.MaxRetryTimes
		}
	case FieldRetryTimeout:
		if f.RetryTimeout != nil {
			return *f.RetryTimeout
		}
	}
	return nil
}

func fieldString(name string, f Fields) string { return fmt.Sprint(f.Value(name)) }

func joinFields(names []string) string {
	switch len(names) {
	case 3:
		return "all fields"
	case 1:
		return names[0]
	}
	return names[0] + " and " + names[1]
}
