package kernel

import (
	"encoding/json"
	"testing"
	"time"

	backuppb "github.com/pingcap/kvproto/pkg/brpb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

func marshal(t *testing.T, m interface{ Marshal() ([]byte, error) }) []byte {
	t.Helper()
	b, err := m.Marshal()
	require.NoError(t, err)
	return b
}

// The decoder reads what kvproto's generated code (what BR links) writes.
func TestDecodeTaskInfo(t *testing.T) {
	full := &backuppb.StreamBackupTaskInfo{
		Storage: &backuppb.StorageBackend{Backend: &backuppb.StorageBackend_S3{S3: &backuppb.S3{
			Bucket: "b", Prefix: "p", AccessKey: "k", SecretAccessKey: "s"}}},
		StartTs:         449532234876551170,
		EndTs:           1<<63 - 1,
		Name:            "pitr",
		TableFilter:     []string{"*.*", "!mysql.*"},
		CompressionType: backuppb.CompressionType_ZSTD,
		SecurityConfig:  &backuppb.StreamBackupTaskSecurityConfig{},
	}
	withUnknown := protowire.AppendTag(marshal(t, full), 99, protowire.Fixed32Type)
	withUnknown = protowire.AppendFixed32(withUnknown, 7)
	withUnknown = protowire.AppendTag(withUnknown, 100, protowire.BytesType)
	withUnknown = protowire.AppendBytes(withUnknown, []byte("future"))

	tests := []struct {
		name      string
		data      []byte
		wantName  string
		wantStart uint64
		wantErr   string
	}{
		{"every field BR sets", marshal(t, full), "pitr", 449532234876551170, ""},
		{"start ts only", marshal(t, &backuppb.StreamBackupTaskInfo{StartTs: 42}), "", 42, ""},
		{"empty message", nil, "", 0, ""},
		{"fields of later versions are skipped", withUnknown, "pitr", 449532234876551170, ""},
		{"truncated", marshal(t, full)[:5], "", 0, "decode StreamBackupTaskInfo"},
		{"not protobuf", []byte{0xff, 0xff, 0xff}, "", 0, "decode StreamBackupTaskInfo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, start, err := decodeTaskInfo(tt.data)
			if tt.wantErr != "" {
				assert.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantName, name)
			assert.Equal(t, tt.wantStart, start)
		})
	}
}

func TestDecodeStreamBackupError(t *testing.T) {
	at := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	data := marshal(t, &backuppb.StreamBackupError{HappenAt: uint64(at.UnixMilli()), ErrorCode: "KV:LogBackup:RaftReq",
		ErrorMessage: "region 42 not leader", StoreId: 3})
	e, err := decodeStreamBackupError(data)
	require.NoError(t, err)
	assert.Equal(t, StoreError{StoreID: 3, Code: "KV:LogBackup:RaftReq", Message: "region 42 not leader", HappenAt: at}, e)
	assert.Equal(t, "store 3: KV:LogBackup:RaftReq: region 42 not leader", e.String())

	_, err = decodeStreamBackupError(data[:len(data)-3])
	assert.ErrorContains(t, err, "decode StreamBackupError")
}

func TestDecodePause(t *testing.T) {
	storeErr := marshal(t, &backuppb.StreamBackupError{ErrorCode: "KV:Unknown", ErrorMessage: "disk full", StoreId: 1})
	record := func(severity, payloadType string, payload []byte) []byte {
		b, err := json.Marshal(map[string]any{"severity": severity, "operation_hostname": "br-0", "operation_pid": 1,
			"operation_time": "2026-11-28T10:00:00Z", "payload_type": payloadType, "payload": payload})
		require.NoError(t, err)
		return b
	}
	tests := []struct {
		name        string
		value       []byte
		wantByError bool
		wantMessage string
	}{
		{"empty value: an operator's pause, BR's first format", nil, false, ""},
		{"advancer paused on a store error", record("ERROR", "application/x-protobuf;messagetype=brpb.StreamBackupError", storeErr),
			true, "store 1: KV:Unknown: disk full"},
		{"error with a text payload", record("ERROR", "text/plain;charset=UTF-8", []byte("checkpoint lag too large")),
			true, "checkpoint lag too large"},
		{"br log pause with a message", record("REGULAR_OPERATION", "text/plain;charset=UTF-8", []byte("maintenance")), false, "maintenance"},
		{"older tooling's manual severity", record("MANUAL", "", nil), false, ""},
		{"error without payload", record("ERROR", "", nil), true, ""},
		{"unsupported payload type", record("ERROR", "application/json", []byte("{}")), true, `pause payload of unsupported type "application/json"`},
		{"other protobuf message", record("ERROR", "application/x-protobuf;messagetype=brpb.Other", []byte{1}), true,
			`pause payload of unsupported type "application/x-protobuf;messagetype=brpb.Other"`},
		{"garbled payload type", record("ERROR", ";;", []byte("x")), true, `pause payload of unreadable type ";;"`},
		{"garbled protobuf payload", record("ERROR", "application/x-protobuf;messagetype=brpb.StreamBackupError", []byte{0xff}), true,
			"unreadable pause payload: decode StreamBackupError: unexpected EOF"},
		{"not JSON", []byte("paused!"), false, "unreadable pause record: invalid character 'p' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			byError, msg := decodePause(tt.value)
			assert.Equal(t, tt.wantByError, byError)
			assert.Equal(t, tt.wantMessage, msg)
		})
	}
}

func TestTaskMessages(t *testing.T) {
	task := &Task{Name: "pitr", Exists: true, StartTS: 7, Paused: true, PausedByError: true, PauseMessage: "store 1: E: disk full",
		LastErrors: []StoreError{{StoreID: 1, Code: "E", Message: "disk full"}, {StoreID: 2, Message: "slow"}}}
	assert.Equal(t, "store 1: E: disk full; store 2: slow", task.ErrorMessage(), "a store error the pause already carries is not repeated")
	assert.Equal(t, "task pitr (start ts 7) is paused by an error", task.Summary())
	assert.Equal(t, "task pitr does not exist", (&Task{Name: "pitr"}).Summary())
	assert.Equal(t, "task pitr (start ts 7) exists, paused by an operator", (&Task{Name: "pitr", Exists: true, StartTS: 7, Paused: true}).Summary())
	assert.Equal(t, "task pitr (start ts 7) exists and runs", (&Task{Name: "pitr", Exists: true, StartTS: 7}).Summary())
	assert.Empty(t, (&Task{}).ErrorMessage())
}

func TestValidateTemplates(t *testing.T) {
	tests := []struct {
		endpoint, secret, wantErr string
	}{
		{DefaultEndpointTemplate, "", ""},
		{"https://{cluster}-pd.{namespace}.svc:2379", "{cluster}-cluster-client-secret", ""},
		{"http://pd.example:2379", "", ""},
		{"http://{cluster}-pd.{ns}:2379", "", "unknown placeholder {ns}"},
		{"https://{cluster}-pd:2379", "{name}-tls", "unknown placeholder {name}"},
		{"{cluster}-pd:2379", "", "the scheme must be http or https"},
		{"grpc://{cluster}-pd:2379", "", "the scheme must be http or https"},
		{"http://", "", "no host"},
		{"http://{cluster}-pd:2379", "{cluster}-cluster-client-secret", "client TLS needs an https endpoint"},
		{"http://a b:2379", "", "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint+"|"+tt.secret, func(t *testing.T) {
			err := ValidateTemplates(tt.endpoint, tt.secret)
			if tt.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tt.wantErr)
			}
		})
	}
}
