package admissionpolicy

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// The CEL below is written once, from the defaults package's constants: field names, the
// CRD's snapshot defaults, the annotation, Go's duration grammar and the overflow bound.
// The configured log defaults are read from the params ConfigMap (ParamKeys), so the same
// policies serve any configuration, and the chart can ship them as generated.

// ParamKeys are the keys of the params ConfigMap.
const (
	ParamMinRetryDuration      = "minRetryDuration"
	ParamMaxRetryTimes         = "maxRetryTimes"
	ParamRetryTimeout          = "retryTimeout"
	ParamReplaceSchemaDefaults = "replaceSchemaDefaults"
)

// durationRE is Go's time.ParseDuration grammar (an optional sign, then "0" or a sequence
// of numbers with units). CEL's duration() is time.ParseDuration itself, but a string it
// cannot parse is an evaluation error, not false, so a value is only handed to duration()
// once it matches. A value that matches and still fails (a number too large) is the one
// case left to duration(): the request is then denied by the evaluation error.
const durationRE = `^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)$`

// units are Go's duration units, for the "unknown unit" message.
const units = `['ns', 'us', '\u00b5s', '\u03bcs', 'ms', 's', 'm', 'h']`

// overflowBounds lists, for retry n = 2..63, the first minRetryDuration whose retry-n
// delay (min << (n-1)) no longer fits in int64 nanoseconds: 2^(64-n) ns. The largest n a
// duration d allows (defaults.MaxRetryWithoutOverflow) is 1 + the number of bounds above
// d; n = 1 always fits.
func overflowBounds() string {
	parts := make([]string, 0, 62)
	for n := 2; n <= 63; n++ {
		b := new(big.Int).Lsh(big.NewInt(1), uint(64-n))
		parts = append(parts, fmt.Sprintf("duration('%sns')", b.String()))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// location is where a policy sits in an object, and the names of its variables.
type location struct {
	// prefix names the location's variables (b, bt, lt).
	prefix string
	// path is the policy's field path as messages write it.
	path string
	// cel is the optional chain that reaches the policy in object (and, with old, in
	// oldObject), e.g. "object.spec.?backoffRetryPolicy".
	cel, old string
}

func backupLocation() location {
	return location{prefix: "b", path: "spec." + defaults.FieldPolicy,
		cel: "object.spec.?" + defaults.FieldPolicy, old: "oldObject.spec.?" + defaults.FieldPolicy}
}

func templateLocation(prefix, template string) location {
	return location{prefix: prefix, path: "spec." + template + "." + defaults.FieldPolicy,
		cel: "object.spec.?" + template + ".?" + defaults.FieldPolicy, old: "oldObject.spec.?" + template + ".?" + defaults.FieldPolicy}
}

// v names a variable of the location.
func (l location) v(name string) string { return "variables." + l.prefix + "_" + name }

// fieldVars are the optional values of the three fields.
func (l location) fieldVars() []variable {
	return []variable{
		{l.prefix + "_min", l.cel + ".?" + defaults.FieldMinRetryDuration},
		{l.prefix + "_max", l.cel + ".?" + defaults.FieldMaxRetryTimes},
		{l.prefix + "_timeout", l.cel + ".?" + defaults.FieldRetryTimeout},
	}
}

type variable struct{ name, expr string }

// paramVars read the configured defaults.
func paramVars() []variable {
	return []variable{
		{"def_min", "params.data['" + ParamMinRetryDuration + "']"},
		{"def_max", "int(params.data['" + ParamMaxRetryTimes + "'])"},
		{"def_timeout", "params.data['" + ParamRetryTimeout + "']"},
		{"replace", "params.data['" + ParamReplaceSchemaDefaults + "'] == 'true'"},
		{"keep", "has(object.metadata.annotations) && object.metadata.annotations[?'" + defaults.KeepSchemaDefaultsAnnotation +
			"'].orValue('') == 'true'"},
	}
}

// schemaDefaultsVar: the policy is not empty and every present field holds the CRD's
// snapshot default literally (defaults.matchesSchemaDefaults).
func (l location) schemaDefaultsVar() variable {
	sd := defaults.SchemaDefaults
	return variable{l.prefix + "_schema", fmt.Sprintf(
		"(%[1]s.hasValue() || %[2]s.hasValue() || %[3]s.hasValue()) && %[1]s.orValue('%[4]s') == '%[4]s' && %[2]s.orValue(%[5]d) == %[5]d && %[3]s.orValue('%[6]s') == '%[6]s'",
		l.v("min"), l.v("max"), l.v("timeout"), *sd.MinRetryDuration, *sd.MaxRetryTimes, *sd.RetryTimeout)}
}

// fillExprs are the three fields' values after defaulting (defaults.Config.FillLog): when
// the whole policy is the CRD's snapshot defaults (and replacement is on and the object
// did not opt out), every field gets the log default unless it already means the same;
// otherwise a missing field gets the log default and a present one is kept.
func (l location) fillExprs() (minE, maxE, timeoutE string) {
	all := "variables.replace && !variables.keep && " + l.v("schema")
	dur := func(f, def string) string {
		return fmt.Sprintf("(%[3]s) ? (%[1]s.hasValue() && duration(string(%[1]s.value())) == duration(%[2]s) ? string(%[1]s.value()) : %[2]s) : %[1]s.orValue(%[2]s)",
			f, def, all)
	}
	minE = dur(l.v("min"), "variables.def_min")
	timeoutE = dur(l.v("timeout"), "variables.def_timeout")
	maxE = fmt.Sprintf("(%s) ? variables.def_max : %s.orValue(variables.def_max)", all, l.v("max"))
	return minE, maxE, timeoutE
}

// validationVars are what the rules of one location share.
func (l location) validationVars() []variable {
	vars := l.fieldVars()
	okDur := func(f string) string {
		return fmt.Sprintf("%[1]s.hasValue() && string(%[1]s.value()).matches('%[2]s') && duration(string(%[1]s.value())) > duration('0s')", f, durationRE)
	}
	maxRetries := func(d string) string { return "(1 + variables.bounds.filter(b, " + d + " < b).size())" }
	vars = append(vars,
		variable{l.prefix + "_minOK", okDur(l.v("min"))},
		variable{l.prefix + "_timeoutOK", okDur(l.v("timeout"))},
		// The largest maxRetryTimes the present minRetryDuration allows (0 if it is not valid).
		variable{l.prefix + "_minAllows", fmt.Sprintf("%s ? %s : 0", l.v("minOK"), maxRetries("duration(string("+l.v("min")+".value()))"))},
		variable{l.prefix + "_unchanged", fmt.Sprintf("request.operation == 'UPDATE' && %s == %s", l.cel, l.old)},
	)
	vars = append(vars, l.problemVars("min")...)
	return append(vars, l.problemVars("timeout")...)
}

// shared variables of the validating policies.
func validationSharedVars() []variable {
	sd := defaults.SchemaDefaults
	return []variable{
		{"bounds", overflowBounds()},
		paramVars()[0], // def_min
		paramVars()[1], // def_max
		// defaults.Config.largestDefaultMin and largestDefaultMax: what defaulting may
		// fill into a missing field, the CRD's snapshot default or the log default.
		{"largest_min", fmt.Sprintf("duration(variables.def_min) > duration('%[1]s') ? variables.def_min : '%[1]s'", *sd.MinRetryDuration)},
		{"largest_min_text", fmt.Sprintf("duration(variables.def_min) > duration('%s') ? variables.def_min : '%s'", *sd.MinRetryDuration, formatSchemaMin())},
		{"largest_max", fmt.Sprintf("variables.def_max > %[1]d ? variables.def_max : %[1]d", *sd.MaxRetryTimes)},
		{"largest_min_allows", "1 + variables.bounds.filter(b, duration(variables.largest_min) < b).size()"},
	}
}

// rule is one validation: expr is true when valid; msg is a CEL string expression.
type rule struct{ expr, msg string }

// durationNum is a number as time.ParseDuration reads it.
const durationNum = `([0-9]+[.]?[0-9]*|[.][0-9]+)`

// problemVars retrace Go's duration scanner for a field's value, for durationProblem:
// after the sign, the value is a run of components, each a number and a unit (the
// characters up to the next digit or dot); the first component that is not a number with
// a known unit is the one time.ParseDuration's error names.
func (l location) problemVars(v string) []variable {
	val := l.v(v) + ".orValue('')"
	body := fmt.Sprintf("%[1]s.matches('^[-+]') ? %[1]s.substring(1) : %[1]s", val)
	bad := fmt.Sprintf("%s.findAll('[0-9.]+[^0-9.]*').filter(c, !(c.matches('^%s[^0-9.]+$') && c.find('[^0-9.]+$') in %s))",
		l.v(v+"_body"), durationNum, units)
	return []variable{{l.prefix + "_" + v + "_body", body}, {l.prefix + "_" + v + "_bad", bad}}
}

// durationProblem mirrors defaults.durationProblem for what CEL can see of a value (the
// parse error itself is not available): see problemVars.
func (l location) durationProblem(v string) string {
	val, body, bad := "string("+l.v(v)+".value())", l.v(v+"_body"), l.v(v+"_bad")
	return fmt.Sprintf(`(%[1]s.trim() == '' ? 'empty' : !%[2]s.matches('^[0-9.]') ? 'not a number followed by a unit' : `+
		`%[3]s.size() == 0 ? 'not a number followed by a unit' : `+
		`%[3]s[0].matches('^%[4]s$') ? 'missing unit' : `+
		`%[3]s[0].matches('^%[4]s[^0-9.]+$') ? 'unknown unit "' + %[3]s[0].find('[^0-9.]+$') + '"' : `+
		`%[3]s[0].matches('^%[4]s[.]') ? 'missing unit' : 'not a number followed by a unit')`, val, body, bad, durationNum)
}

// durationRules check a duration field as defaults.ParseDuration does.
func (l location) durationRules(field, v string) []rule {
	path := l.path + "." + field
	val := "string(" + l.v(v) + ".value())"
	return []rule{
		{
			expr: fmt.Sprintf("!%[1]s.hasValue() || %[2]s.matches('%[3]s')", l.v(v), val, durationRE),
			msg: fmt.Sprintf(`'%s: Invalid value: "' + %s + '": must be a Go duration such as 30s or 5m (' + %s + ')'`,
				path, val, l.durationProblem(v)),
		},
		{
			expr: fmt.Sprintf("!%[1]s.hasValue() || !%[2]s.matches('%[3]s') || duration(%[2]s) > duration('0s')", l.v(v), val, durationRE),
			msg:  fmt.Sprintf(`'%s: Invalid value: "' + %s + '": must be greater than 0'`, path, val),
		},
	}
}

// rules are defaults.Config.ValidatePolicy's checks, with its messages.
func (l location) rules() []rule {
	maxPath := l.path + "." + defaults.FieldMaxRetryTimes
	minPath := l.path + "." + defaults.FieldMinRetryDuration
	n := "int(" + l.v("max") + ".value())"
	out := l.durationRules(defaults.FieldMinRetryDuration, "min")
	out = append(out, l.durationRules(defaults.FieldRetryTimeout, "timeout")...)
	out = append(out,
		rule{
			expr: fmt.Sprintf("!%s.hasValue() || %s >= 0", l.v("max"), n),
			msg:  fmt.Sprintf(`'%s: Invalid value: ' + string(%s) + ': must be greater than or equal to 0'`, maxPath, n),
		},
		rule{
			expr: fmt.Sprintf("!%s.hasValue() || !%s || %s < 0 || %s <= %s", l.v("max"), l.v("minOK"), n, n, l.v("minAllows")),
			msg: fmt.Sprintf(`'%s: Invalid value: ' + string(%s) + ': must be at most ' + string(%s) + ' with minRetryDuration ' + string(%s.value()) + ': the delay of retry ' + string(%s) + ' overflows'`,
				maxPath, n, l.v("minAllows"), l.v("min"), n),
		},
		rule{
			expr: fmt.Sprintf("!%s.hasValue() || %s.hasValue() || %s < 0 || %s <= variables.largest_min_allows", l.v("max"), l.v("min"), n, n),
			msg: fmt.Sprintf(`'%s: Invalid value: ' + string(%s) + ': must be at most ' + string(variables.largest_min_allows) + ' when minRetryDuration is unset (it may default to ' + variables.largest_min_text + '): the delay of retry ' + string(%s) + ' overflows'`,
				maxPath, n, n),
		},
		rule{
			expr: fmt.Sprintf("%s.hasValue() || !%s || variables.largest_max <= %s", l.v("max"), l.v("minOK"), l.v("minAllows")),
			msg: fmt.Sprintf(`'%s: Invalid value: "' + string(%s.value()) + '": is too long when maxRetryTimes is unset (it may default to ' + string(variables.largest_max) + '): the delay of retry ' + string(variables.largest_max) + ' overflows'`,
				minPath, l.v("min")),
		},
	)
	// A policy this update does not change is never rejected (the webhook's rule).
	for i := range out {
		out[i].expr = l.v("unchanged") + " || " + out[i].expr
	}
	return out
}

// formatSchemaMin writes the CRD's minRetryDuration as the webhook's messages do.
func formatSchemaMin() string {
	d, _ := defaults.ParseDuration(*defaults.SchemaDefaults.MinRetryDuration)
	return defaults.FormatDuration(d)
}

// celString writes s as a CEL string literal (Go's quoting is a subset of CEL's escapes).
func celString(s string) string { return strconv.Quote(s) }

// modeRules are defaults.ValidateTemplateModes with its messages; a problem the old object
// had with the same value is kept, as the webhook keeps it.
func modeRules() []rule {
	const why = `must be "log": TiDB Operator copies this template into the schedule's log backup`
	lt, bt := "object.spec.?logBackupTemplate.?backupMode", "object.spec.?backupTemplate.?backupMode"
	oldLt, oldBt := "oldObject.spec.?logBackupTemplate.?backupMode", "oldObject.spec.?backupTemplate.?backupMode"
	keptIfOld := func(cur, old string) string {
		return fmt.Sprintf("(request.operation == 'UPDATE' && %s == %s)", old, cur)
	}
	return []rule{
		{
			expr: keptIfOld(lt, oldLt) + " || !has(object.spec.logBackupTemplate) || " + lt + ".orValue('') == 'log'",
			msg: fmt.Sprintf("%s + (%s.orValue('') == '' ? %s : %s + string(%s.value()) + %s)",
				celString("spec.logBackupTemplate.backupMode: "), lt, celString("Required value: "+why),
				celString(`Invalid value: "`), lt, celString(`": `+why)),
		},
		{
			expr: keptIfOld(bt, oldBt) + " || " + bt + ".orValue('') != 'log'",
			msg: celString(`spec.backupTemplate.backupMode: Invalid value: "log": must not be "log": this template is run on every tick; ` +
				`a log backup belongs in logBackupTemplate`),
		},
	}
}

// retentionRule is defaults.ValidateScheduleRetention with its message, under the opt-out
// annotation, and kept on an UPDATE whose old object already had the combination, as the
// webhook keeps it (with a warning, which a policy cannot give).
func retentionRule() rule {
	deletes := func(o string) string {
		return fmt.Sprintf("(has(%[1]s.spec.logBackupTemplate) && %[1]s.spec.?maxBackups.orValue(0) > 0 && !has(%[1]s.spec.maxReservedTime))", o)
	}
	keep := "(has(object.metadata.annotations) && object.metadata.annotations[?'" + defaults.KeepSchemaDefaultsAnnotation +
		"'].orValue('') == 'true')"
	return rule{
		expr: fmt.Sprintf("!%s || %s || (request.operation == 'UPDATE' && %s)", deletes("object"), keep, deletes("oldObject")),
		msg:  celString("spec.maxBackups: Forbidden: " + defaults.MaxBackupsDeletesLogBackup),
	}
}
