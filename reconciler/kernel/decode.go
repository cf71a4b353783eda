package kernel

import (
	"encoding/json"
	"fmt"
	"mime"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the kvproto brpb messages this package reads.
const (
	taskInfoStartTS = 2 // StreamBackupTaskInfo.start_ts, uint64
	taskInfoName    = 4 // StreamBackupTaskInfo.name, string

	errHappenAt = 1 // StreamBackupError.happen_at, uint64 (Unix milliseconds)
	errCode     = 2 // StreamBackupError.error_code, string
	errMessage  = 3 // StreamBackupError.error_message, string
	errStoreID  = 4 // StreamBackupError.store_id, uint64
)

// Pause severities (BR's PauseV2.severity). Only ERROR matters here: any other value is
// an operator's pause (BR writes REGULAR_OPERATION; older tooling MANUAL).
const severityError = "ERROR"

// streamBackupErrorType is the payload type BR gives a pause caused by an error.
const streamBackupErrorType = "brpb.StreamBackupError"

// fields walks the top-level fields of a protobuf message, calling visit with each
// varint or length-delimited value; other wire types are skipped. Unknown fields are
// skipped too: newer BR versions add fields this package does not need.
func fields(b []byte, visit func(num protowire.Number, varint uint64, bytes []byte)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			visit(num, v, nil)
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			visit(num, 0, v)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return nil
}

// decodeTaskInfo reads the name and start ts of a StreamBackupTaskInfo.
func decodeTaskInfo(b []byte) (name string, startTS uint64, err error) {
	err = fields(b, func(num protowire.Number, v uint64, bs []byte) {
		switch {
		case num == taskInfoStartTS && bs == nil:
			startTS = v
		case num == taskInfoName && bs != nil:
			name = string(bs)
		}
	})
	if err != nil {
		return "", 0, fmt.Errorf("decode StreamBackupTaskInfo: %w", err)
	}
	return name, startTS, nil
}

// decodeStreamBackupError reads a StreamBackupError.
func decodeStreamBackupError(b []byte) (StoreError, error) {
	var e StoreError
	err := fields(b, func(num protowire.Number, v uint64, bs []byte) {
		switch {
		case num == errHappenAt && bs == nil && v > 0:
			e.HappenAt = time.UnixMilli(int64(min(v, 1<<62))).UTC()
		case num == errCode && bs != nil:
			e.Code = string(bs)
		case num == errMessage && bs != nil:
			e.Message = string(bs)
		case num == errStoreID && bs == nil:
			e.StoreID = v
		}
	})
	if err != nil {
		return StoreError{}, fmt.Errorf("decode StreamBackupError: %w", err)
	}
	return e, nil
}

// pauseRecord is the JSON BR writes to the pause key (its PauseV2); the payload is
// base64 in JSON, which []byte decodes.
type pauseRecord struct {
	Severity    string `json:"severity"`
	PayloadType string `json:"payload_type"`
	Payload     []byte `json:"payload"`
}

// decodePause reads a pause value: whether an error caused it, and its message. An
// empty value is an operator's pause without details (BR's first format). A value this
// package cannot read is reported as such and counts as not caused by an error: the
// task is still paused, and what to do about it is the operator's call.
func decodePause(b []byte) (byError bool, message string) {
	if len(b) == 0 {
		return false, ""
	}
	var p pauseRecord
	if err := json.Unmarshal(b, &p); err != nil {
		return false, fmt.Sprintf("unreadable pause record: %v", err)
	}
	return p.Severity == severityError, pausePayload(p)
}

// pausePayload renders a pause payload: a StreamBackupError as "store N: code: message",
// text as is.
func pausePayload(p pauseRecord) string {
	if p.PayloadType == "" || len(p.Payload) == 0 {
		return ""
	}
	mediaType, params, err := mime.ParseMediaType(p.PayloadType)
	if err != nil {
		return fmt.Sprintf("pause payload of unreadable type %q", p.PayloadType)
	}
	switch {
	case mediaType == "text/plain":
		return string(p.Payload)
	case mediaType == "application/x-protobuf" && params["messagetype"] == streamBackupErrorType:
		e, err := decodeStreamBackupError(p.Payload)
		if err != nil {
			return fmt.Sprintf("unreadable pause payload: %v", err)
		}
		return e.String()
	}
	return fmt.Sprintf("pause payload of unsupported type %q", p.PayloadType)
}
