package webhook

import (
	"errors"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// An AdmissionReview for a Backup is ~4.5 KB, of which the webhooks read a few hundred
// bytes: the envelope, the object's name, annotations, backupMode and retry policy. The
// generic decoder pays for every byte twice (a validity scan, then a decode that steps
// through skipped values byte by byte), and that was most of a call's cost
// (docs/benchmarks.md). prune makes one tight pass over the body that validates all of
// it and copies out only the members the views read; the views are then decoded from
// that small document by the same decoder as before.
//
// It is an optimization with an exact fallback: whenever prune declines (anything it
// does not handle, such as an escaped key) or the pruned document does not decode, the
// full body is decoded as before, so answers and error messages do not change. For that,
// prune must never accept a body the full decoder would reject: it validates at least as
// strictly (a differential fuzz target, FuzzPrune, checks this and that both decodes
// agree).

// keepTree names the members of a JSON object to keep. A nil subtree keeps the whole
// value; a subtree prunes the value if it is an object, and keeps it whole otherwise.
type keepTree map[string]keepTree

// stringsOnly, as a member of a keepTree, makes every member the tree does not name a
// string that is dropped: where the view decodes a map[string]string and reads one key,
// the other members still fail the decode if they are not strings, so prune declines
// them instead. A raw NUL cannot appear in a JSON key, and escaped keys are declined, so
// no key matches it.
const stringsOnly = "\x00strings"

// annotationsKeep keeps the one annotation the webhooks read. The others can be large:
// kubectl's last-applied-configuration holds the whole object again.
var annotationsKeep = keepTree{defaults.KeepSchemaDefaultsAnnotation: nil, stringsOnly: nil}

// templateKeep covers a backupSpecView.
var templateKeep = keepTree{"backupMode": nil, "backoffRetryPolicy": nil}

// objectKeep covers backupView and scheduleView: every JSON name either reads.
var objectKeep = keepTree{
	"metadata": {"name": nil, "annotations": annotationsKeep},
	"spec": {"backupMode": nil, "backoffRetryPolicy": nil,
		"backupTemplate": templateKeep, "logBackupTemplate": templateKeep},
}

// reviewKeep covers envelope and request.
var reviewKeep = keepTree{
	"apiVersion": nil,
	"kind":       nil,
	"request": {"uid": nil, "kind": nil, "name": nil, "namespace": nil, "operation": nil,
		"object": objectKeep, "oldObject": objectKeep},
}

// maxPruneDepth bounds nesting; deeper documents take the full decoder (whose own limit
// is 10,000).
const maxPruneDepth = 500

var errDecline = errors.New("prune: declined")

type pruner struct {
	in    []byte
	out   []byte
	depth int
}

// prune validates in as one JSON value and returns the members keep names, with the
// same order and duplicates, or false when it declines.
func prune(in []byte, keep keepTree) ([]byte, bool) {
	p := pruner{in: in, out: make([]byte, 0, 1024)}
	end, err := p.value(p.ws(0), keep)
	if err != nil || p.ws(end) != len(in) {
		return nil, false
	}
	return p.out, true
}

// ws skips JSON whitespace.
func (p *pruner) ws(i int) int {
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

// value copies the value at i to out: pruned by keep if it is an object and keep names
// members, whole otherwise.
func (p *pruner) value(i int, keep keepTree) (int, error) {
	if keep != nil && i < len(p.in) && p.in[i] == '{' {
		return p.object(i, keep)
	}
	end, err := p.skip(i)
	if err != nil {
		return 0, err
	}
	p.out = append(p.out, p.in[i:end]...)
	return end, nil
}

// object copies the members of the object at i that keep names.
func (p *pruner) object(i int, keep keepTree) (int, error) {
	if p.depth++; p.depth > maxPruneDepth {
		return 0, errDecline
	}
	p.out = append(p.out, '{')
	first := true
	i = p.ws(i + 1)
	if i < len(p.in) && p.in[i] == '}' {
		p.out = append(p.out, '}')
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
		if sub, ok := keep[string(key)]; ok {
			if !first {
				p.out = append(p.out, ',')
			}
			first = false
			p.out = append(p.out, p.in[keyEnd-len(key)-2:keyEnd]...)
			p.out = append(p.out, ':')
			i, err = p.value(i, sub)
		} else {
			if _, only := keep[stringsOnly]; only && (i >= len(p.in) || p.in[i] != '"') {
				return 0, errDecline
			}
			i, err = p.skip(i)
		}
		if err != nil {
			return 0, err
		}
		var done bool
		if i, done, err = p.next(i, '}'); err != nil || done {
			p.out = append(p.out, '}')
			return i, err
		}
	}
}

// skip validates the value at i and returns where it ends.
func (p *pruner) skip(i int) (int, error) {
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
func (p *pruner) container(i int) (int, error) {
	if p.depth++; p.depth > maxPruneDepth {
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
func (p *pruner) colon(i int) (int, error) {
	i = p.ws(i)
	if i >= len(p.in) || p.in[i] != ':' {
		return 0, errDecline
	}
	return p.ws(i + 1), nil
}

// next expects, after a member or element, a ',' (it returns where the next one starts)
// or the closer (done: it returns where the container ends, one level up).
func (p *pruner) next(i int, closer byte) (int, bool, error) {
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
func (p *pruner) str(i int) (end int, escaped bool, err error) {
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

func (p *pruner) literal(i int, word string) (int, error) {
	if len(p.in)-i < len(word) || string(p.in[i:i+len(word)]) != word {
		return 0, errDecline
	}
	return i + len(word), nil
}

// number validates a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *pruner) number(i int) (int, error) {
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
