package defaults

import (
	"encoding/json"
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ReadFields reads a retry policy from its decoded JSON value: the value found at
// spec.backoffRetryPolicy (or a template's), as produced by encoding/json (numbers as
// float64 or json.Number) or by Kubernetes' unstructured decoding (numbers as int64).
// A nil value (absent or null) is an empty policy. Values of the wrong JSON type are
// reported as field.TypeInvalid errors under fldPath; fields it does not know are ignored.
func ReadFields(v any, fldPath *field.Path) (Fields, field.ErrorList) {
	var out Fields
	if v == nil {
		return out, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return out, field.ErrorList{field.TypeInvalid(fldPath, v, "must be an object")}
	}
	var errs field.ErrorList
	readString := func(name string) *string {
		raw, ok := m[name]
		if !ok || raw == nil {
			return nil
		}
		s, ok := raw.(string)
		if !ok {
			errs = append(errs, field.TypeInvalid(fldPath.Child(name), raw, "must be a string"))
			return nil
		}
		return &s
	}
	out.MinRetryDuration = readString(FieldMinRetryDuration)
	out.RetryTimeout = readString(FieldRetryTimeout)
	if raw, ok := m[FieldMaxRetryTimes]; ok && raw != nil {
		n, err := toInt64(raw)
		if err != nil {
			errs = append(errs, field.TypeInvalid(fldPath.Child(FieldMaxRetryTimes), raw, err.Error()))
		} else {
			out.MaxRetryTimes = &n
		}
	}
	return out, errs
}

// toInt64 accepts the integer representations the two JSON decoders produce.
func toInt64(v any) (int64, error) {
	switch n := v.(type) {
	case int64:
		return n, nil
	case int:
		return int64(n), nil
	case int32:
		return int64(n), nil
	case float64:
		// 2^63 is exactly representable; anything at or beyond it does not fit.
		if n != math.Trunc(n) || n >= math.MaxInt64 || n < math.MinInt64 {
			return 0, fmt.Errorf("must be an integer")
		}
		return int64(n), nil
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return 0, fmt.Errorf("must be an integer")
		}
		return i, nil
	default:
		return 0, fmt.Errorf("must be an integer")
	}
}

// Map renders the fields as the JSON object written on an object; absent fields are left out.
func (f Fields) Map() map[string]any {
	m := make(map[string]any, 3)
	if f.MinRetryDuration != nil {
		m[FieldMinRetryDuration] = *f.MinRetryDuration
	}
	if f.MaxRetryTimes != nil {
		m[FieldMaxRetryTimes] = *f.MaxRetryTimes
	}
	if f.RetryTimeout != nil {
		m[FieldRetryTimeout] = *f.RetryTimeout
	}
	return m
}
