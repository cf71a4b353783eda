package webhook

import (
	"errors"
	"strconv"

	utiljson "sigs.k8s.io/json"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// An AdmissionReview for a Backup is ~4.5 KB, of which the webhooks read a few hundred
// bytes: the envelope, the object's name, one annotation, backupMode and the retry policy.
// A generic decoder pays for every byte twice (a validity scan, then a decode that steps
// through skipped values byte by byte), and that was most of a call's cost
// (docs/benchmarks.md). fastDecode makes one tight pass that validates the whole body and
// fills the views directly from the few members they read.
//
// It is an optimization with an exact fallback: whenever it declines (anything it does not
// handle: an escaped key, a member twice, a value of an unexpected type, deep nesting), the
// full decode runs as before, so answers and error messages do not change. For that, it
// must never accept a body the full decoder would reject, and must fill the views exactly
// as the full decoder would: FuzzFastDecode checks both against sigs.k8s.io/json.

// maxDepth bounds nesting; deeper documents take the full decoder (whose own limit is
// 10,000).
const maxDepth = 500

var errDecline = errors.New("fast decode: declined")

// scanner validates JSON and reads the values the views need.
type scanner struct {
	in    []byte
	depth int
}

// ws skips JSON whitespace.
func (p *scanner) ws(i int) int {
	for i < len(p.in) {
		switch p.in[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// members walks the object at i, calling member with each key (unescaped keys only) and
// where its value starts; member returns where the value ends. A key twice declines: the
// views' decoder would merge or override, which is not worth copying here.
func (p *scanner) members(i int, member func(key []byte, at int) (int, error)) (int, error) {
	return p.walk(i, true, member)
}

// structMembers is members for a struct value, which may also be null: the decoder then
// leaves the struct as it is, and so does this.
func (p *scanner) structMembers(i int, member func(key []byte, at int) (int, error)) (int, error) {
	if p.isNull(i) {
		return i + 4, nil
	}
	return p.members(i, member)
}

// membersAll is members for a map, where a key twice is decoded as the last one wins.
func (p *scanner) membersAll(i int, member func(key []byte, at int) (int, error)) (int, error) {
	return p.walk(i, false, member)
}

func (p *scanner) walk(i int, once bool, member func(key []byte, at int) (int, error)) (int, error) {
	if i >= len(p.in) || p.in[i] != '{' {
		return 0, errDecline
	}
	if p.depth++; p.depth > maxDepth {
		return 0, errDecline
	}
	var seen [8][]byte // the kept keys seen in this object; the views read fewer than 8 per object
	nSeen := 0
	i = p.ws(i + 1)
	if i < len(p.in) && p.in[i] == '}' {
		p.depth--
		return i + 1, nil
	}
	for {
		keyEnd, escaped, err := p.str(i)
		if err != nil {
			return 0, err
		}
		if escaped {
			// "sp\u0065c" is "spec" to the decoder; matching it here is not worth it.
			return 0, errDecline
		}
		key := p.in[i+1 : keyEnd-1]
		if i, err = p.colon(keyEnd); err != nil {
			return 0, err
		}
		end, err := member(key, i)
		if err != nil {
			return 0, err
		}
		if end < 0 { // not a member the caller reads
			if end, err = p.skip(i); err != nil {
				return 0, err
			}
		} else if once {
			for _, k := range seen[:nSeen] {
				if string(k) == string(key) {
					return 0, errDecline
				}
			}
			if nSeen == len(seen) {
				return 0, errDecline
			}
			seen[nSeen] = key
			nSeen++
		}
		var done bool
		if i, done, err = p.next(end, '}'); err != nil || done {
			return i, err
		}
	}
}

// skipped is what a member callback returns for a member it does not read.
const skipped = -1

// isNull reports the literal null at i.
func (p *scanner) isNull(i int) bool {
	return len(p.in)-i >= 4 && string(p.in[i:i+4]) == "null"
}

// stringValue reads a string (into *dst) or null (leaving *dst, as the decoder does); any
// other value declines.
func (p *scanner) stringValue(i int, dst *string) (int, error) {
	if p.isNull(i) {
		return i + 4, nil
	}
	end, escaped, err := p.str(i)
	if err != nil {
		return 0, err
	}
	raw := p.in[i:end]
	if !escaped && ascii(raw) {
		*dst = string(raw[1 : len(raw)-1])
		return end, nil
	}
	// Escapes, or bytes the decoder checks as UTF-8 (replacing invalid ones): let it.
	if err := utiljson.UnmarshalCaseSensitivePreserveInts(raw, dst); err != nil {
		return 0, errDecline
	}
	return end, nil
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// anyValue reads any value into *dst exactly as the views' decoder does (integers as
// int64): the retry policy, which validation reads field by field.
func (p *scanner) anyValue(i int, dst *any) (int, error) {
	end, err := p.skip(i)
	if err != nil {
		return 0, err
	}
	if v, ok := flatObject(p.in[i:end]); ok {
		*dst = v
		return end, nil
	}
	var v any
	if err := utiljson.UnmarshalCaseSensitivePreserveInts(p.in[i:end], &v); err != nil {
		return 0, errDecline
	}
	*dst = v
	return end, nil
}

// flatObject decodes the common shape of a retry policy without the generic decoder, whose
// reflection and allocations were a tenth of a call that has a policy: a valid JSON object
// (raw has been validated) whose keys are unescaped, ASCII and distinct, and whose values are
// unescaped ASCII strings, integers that fit an int64, true, false or null. The values come
// out as the decoder gives them (integers as int64). Anything else returns false, and the
// decoder reads it.
func flatObject(raw []byte) (map[string]any, bool) {
	q := scanner{in: raw}
	if raw[0] != '{' {
		return nil, false
	}
	m := make(map[string]any, 4)
	i := q.ws(1)
	if raw[i] == '}' {
		return m, true
	}
	for {
		keyEnd, escaped, _ := q.str(i)
		if escaped || !ascii(raw[i:keyEnd]) { // the decoder replaces invalid UTF-8
			return nil, false
		}
		key := string(raw[i+1 : keyEnd-1])
		if _, twice := m[key]; twice {
			return nil, false
		}
		i, _ = q.colon(keyEnd)
		var v any
		switch c := raw[i]; {
		case c == '"':
			end, escaped, _ := q.str(i)
			if escaped || !ascii(raw[i:end]) {
				return nil, false
			}
			v, i = string(raw[i+1:end-1]), end
		case c == '-' || (c >= '0' && c <= '9'):
			end, _ := q.number(i)
			n, err := strconv.ParseInt(string(raw[i:end]), 10, 64)
			if err != nil { // a fraction, an exponent, or out of range
				return nil, false
			}
			v, i = n, end
		case c == 't':
			v, i = true, i+4
		case c == 'f':
			v, i = false, i+5
		case c == 'n':
			v, i = nil, i+4
		default: // an object or an array
			return nil, false
		}
		m[key] = v
		i = q.ws(i)
		if raw[i] == '}' {
			return m, true
		}
		i = q.ws(i + 1) // the comma
	}
}

// objectData is every field either view reads of an object.
type objectData struct {
	Metadata          objectMeta
	Spec              backupSpecView
	BackupTemplate    *backupSpecView
	LogBackupTemplate *backupSpecView
}

// fastDecode fills an envelope of views V from body, or returns false.
func fastDecode[V any](body []byte) (*envelope[V], bool) {
	p := scanner{in: body}
	env := &envelope[V]{}
	end, err := p.members(p.ws(0), func(key []byte, at int) (int, error) {
		switch string(key) {
		case "apiVersion":
			return p.stringValue(at, &env.APIVersion)
		case "kind":
			return p.stringValue(at, &env.Kind)
		case "request":
			if p.isNull(at) {
				env.Request = nil
				return at + 4, nil
			}
			env.Request = &request[V]{}
			return decodeRequest(&p, at, env.Request)
		}
		return skipped, nil
	})
	if err != nil || p.ws(end) != len(body) {
		return nil, false
	}
	return env, true
}

func decodeRequest[V any](p *scanner, at int, r *request[V]) (int, error) {
	return p.members(at, func(key []byte, at int) (int, error) {
		switch string(key) {
		case "uid":
			return p.stringValue(at, (*string)(&r.UID))
		case "name":
			return p.stringValue(at, &r.Name)
		case "namespace":
			return p.stringValue(at, &r.Namespace)
		case "operation":
			return p.stringValue(at, (*string)(&r.Operation))
		case "kind":
			return p.structMembers(at, func(key []byte, at int) (int, error) {
				switch string(key) {
				case "group":
					return p.stringValue(at, &r.Kind.Group)
				case "version":
					return p.stringValue(at, &r.Kind.Version)
				case "kind":
					return p.stringValue(at, &r.Kind.Kind)
				}
				return skipped, nil
			})
		case "object":
			return decodeObject(p, at, &r.Object)
		case "oldObject":
			return decodeObject(p, at, &r.OldObject)
		}
		return skipped, nil
	})
}

// decodeObject reads an object (or null) into the view V.
func decodeObject[V any](p *scanner, at int, dst **V) (int, error) {
	if p.isNull(at) {
		*dst = nil
		return at + 4, nil
	}
	var o objectData
	end, err := p.object(at, &o)
	if err != nil {
		return 0, err
	}
	v, ok := viewFrom[V](&o)
	if !ok {
		return 0, errDecline
	}
	*dst = v
	return end, nil
}

// viewFrom builds a view from what was read.
func viewFrom[V any](o *objectData) (*V, bool) {
	v := new(V)
	switch view := any(v).(type) {
	case *backupView:
		view.Metadata, view.Spec = o.Metadata, o.Spec
	case *scheduleView:
		view.Metadata = o.Metadata
		view.Spec.BackupTemplate, view.Spec.LogBackupTemplate = o.BackupTemplate, o.LogBackupTemplate
	default:
		return nil, false
	}
	return v, true
}

// object reads the members of a Backup or BackupSchedule the views read. Both views are
// read, whichever V is, so a value of an unexpected type anywhere they look declines.
func (p *scanner) object(at int, o *objectData) (int, error) {
	return p.members(at, func(key []byte, at int) (int, error) {
		switch string(key) {
		case "metadata":
			return p.structMembers(at, func(key []byte, at int) (int, error) {
				switch string(key) {
				case "name":
					return p.stringValue(at, &o.Metadata.Name)
				case "annotations":
					return p.annotations(at, &o.Metadata.Annotations)
				}
				return skipped, nil
			})
		case "spec":
			return p.structMembers(at, func(key []byte, at int) (int, error) {
				switch string(key) {
				case "backupMode", "backoffRetryPolicy":
					return p.specField(key, at, &o.Spec)
				case "backupTemplate":
					return p.template(at, &o.BackupTemplate)
				case "logBackupTemplate":
					return p.template(at, &o.LogBackupTemplate)
				}
				return skipped, nil
			})
		}
		return skipped, nil
	})
}

// specField reads backupMode or backoffRetryPolicy of a Backup spec or template.
func (p *scanner) specField(key []byte, at int, s *backupSpecView) (int, error) {
	if string(key) == "backupMode" {
		return p.stringValue(at, &s.BackupMode)
	}
	return p.anyValue(at, &s.BackoffRetryPolicy)
}

// template reads a BackupSchedule template (or null).
func (p *scanner) template(at int, dst **backupSpecView) (int, error) {
	if p.isNull(at) {
		*dst = nil
		return at + 4, nil
	}
	t := &backupSpecView{}
	end, err := p.members(at, func(key []byte, at int) (int, error) {
		switch string(key) {
		case "backupMode", "backoffRetryPolicy":
			return p.specField(key, at, t)
		}
		return skipped, nil
	})
	if err != nil {
		return 0, err
	}
	*dst = t
	return end, nil
}

// annotations reads the one annotation the webhooks read (objectMeta.keepSchemaDefaults).
// The others can be large (kubectl's last-applied-configuration holds the whole object
// again) and are only checked to be strings, as the decoder of a map[string]string does.
func (p *scanner) annotations(at int, dst *map[string]string) (int, error) {
	if p.isNull(at) {
		*dst = nil
		return at + 4, nil
	}
	if *dst == nil {
		*dst = map[string]string{}
	}
	return p.membersAll(at, func(key []byte, at int) (int, error) {
		if at >= len(p.in) || p.in[at] != '"' {
			return 0, errDecline // not a string: the decoder fails here; let it say so
		}
		if string(key) != defaults.KeepSchemaDefaultsAnnotation {
			end, _, err := p.str(at)
			return end, err
		}
		var v string
		end, err := p.stringValue(at, &v)
		(*dst)[defaults.KeepSchemaDefaultsAnnotation] = v
		return end, err
	})
}

// skip validates the value at i and returns where it ends.
func (p *scanner) skip(i int) (int, error) {
	if i >= len(p.in) {
		return 0, errDecline
	}
	switch c := p.in[i]; {
	case c == '"':
		end, _, err := p.str(i)
		return end, err
	case c == '{' || c == '[':
		return p.container(i)
	case c == 't':
		return p.literal(i, "true")
	case c == 'f':
		return p.literal(i, "false")
	case c == 'n':
		return p.literal(i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number(i)
	}
	return 0, errDecline
}

// container validates the object or array at i.
func (p *scanner) container(i int) (int, error) {
	if p.depth++; p.depth > maxDepth {
		return 0, errDecline
	}
	isObject := p.in[i] == '{'
	closer := byte(']')
	if isObject {
		closer = '}'
	}
	i = p.ws(i + 1)
	if i < len(p.in) && p.in[i] == closer {
		p.depth--
		return i + 1, nil
	}
	for {
		var err error
		if isObject {
			if i, _, err = p.str(i); err != nil {
				return 0, err
			}
			if i, err = p.colon(i); err != nil {
				return 0, err
			}
		}
		if i, err = p.skip(i); err != nil {
			return 0, err
		}
		var done bool
		if i, done, err = p.next(i, closer); err != nil || done {
			return i, err
		}
	}
}

// colon expects the ':' after a key at i and returns where the value starts.
func (p *scanner) colon(i int) (int, error) {
	i = p.ws(i)
	if i >= len(p.in) || p.in[i] != ':' {
		return 0, errDecline
	}
	return p.ws(i + 1), nil
}

// next expects, after a member or element, a ',' (it returns where the next one starts)
// or the closer (done: it returns where the container ends, one level up).
func (p *scanner) next(i int, closer byte) (int, bool, error) {
	i = p.ws(i)
	switch {
	case i >= len(p.in):
		return 0, false, errDecline
	case p.in[i] == ',':
		return p.ws(i + 1), false, nil
	case p.in[i] == closer:
		p.depth--
		return i + 1, true, nil
	}
	return 0, false, errDecline
}

// plain marks the bytes a string holds without escaping: not '"', '\\' or a control
// character. Other bytes, invalid UTF-8 included, are accepted as the decoder accepts
// them.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str validates the string at i; escaped reports a backslash in it.
func (p *scanner) str(i int) (end int, escaped bool, err error) {
	if i >= len(p.in) || p.in[i] != '"' {
		return 0, false, errDecline
	}
	in := p.in
	for j := i + 1; ; {
		for j < len(in) && plain[in[j]] {
			j++
		}
		if j >= len(in) {
			return 0, false, errDecline
		}
		switch in[j] {
		case '"':
			return j + 1, escaped, nil
		case '\\':
			escaped = true
			if j+1 >= len(in) {
				return 0, false, errDecline
			}
			switch in[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(in) || !isHex(in[j+2]) || !isHex(in[j+3]) || !isHex(in[j+4]) || !isHex(in[j+5]) {
					return 0, false, errDecline
				}
				j += 6
			default:
				return 0, false, errDecline
			}
		default: // a control character
			return 0, false, errDecline
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (p *scanner) literal(i int, word string) (int, error) {
	if len(p.in)-i < len(word) || string(p.in[i:i+len(word)]) != word {
		return 0, errDecline
	}
	return i + len(word), nil
}

// number validates a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *scanner) number(i int) (int, error) {
	in := p.in
	digits := func(j int) int {
		for j < len(in) && in[j] >= '0' && in[j] <= '9' {
			j++
		}
		return j
	}
	if in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && in[i] >= '1' && in[i] <= '9':
		i = digits(i + 1)
	default:
		return 0, errDecline
	}
	if i < len(in) && in[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, errDecline
		}
		i = j
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, errDecline
		}
		i = j
	}
	return i, nil
}
