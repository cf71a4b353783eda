package etcdtest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"strconv"
	"time"

	backuppb "github.com/pingcap/kvproto/pkg/brpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The keys below are spelled out as BR spells them (br/pkg/streamhelper), independently
// of the package under test, so a wrong key there fails the tests.

// PutTask registers a log backup task as BR's log start does: the protobuf
// StreamBackupTaskInfo (encoded with kvproto's generated code) under the info key.
func PutTask(ctx context.Context, cli *clientv3.Client, name string, startTS uint64) error {
	info := backuppb.StreamBackupTaskInfo{
		Name:        name,
		StartTs:     startTS,
		EndTs:       1<<63 - 1,
		TableFilter: []string{"*.*"},
		Storage: &backuppb.StorageBackend{Backend: &backuppb.StorageBackend_S3{S3: &backuppb.S3{
			Bucket: "backups", Prefix: "log/" + name, Endpoint: "http://minio:9000"}}},
		CompressionType: backuppb.CompressionType_ZSTD,
	}
	data, err := info.Marshal()
	if err != nil {
		return err
	}
	_, err = cli.Put(ctx, "/tidb/br-stream/info/"+name, string(data))
	return err
}

// BRScriptKey is not BR's: it is where an end-to-end story keeps the outcomes still to
// play for a task's log start, for the BR of make e2e's image (test/e2e/br).
func BRScriptKey(task string) string { return "/tidb-backup-guard-e2e/br-script/" + task }

// pauseV2 is BR's pause record.
type pauseV2 struct {
	Severity         string `json:"severity"`
	OperatorHostName string `json:"operation_hostname"`
	OperatorPID      int    `json:"operation_pid"`
	OperationTime    string `json:"operation_time"`
	PayloadType      string `json:"payload_type"`
	Payload          []byte `json:"payload"`
}

// PauseByError pauses a task as the log backup advancer does on a fatal store error:
// the error under the store's last-error key, and a pause record of severity ERROR
// carrying the same StreamBackupError.
func PauseByError(ctx context.Context, cli *clientv3.Client, task string, storeID uint64, code, message string) error {
	e := backuppb.StreamBackupError{HappenAt: uint64(time.Now().UnixMilli()), ErrorCode: code, ErrorMessage: message, StoreId: storeID}
	payload, err := e.Marshal()
	if err != nil {
		return err
	}
	if _, err := cli.Put(ctx, "/tidb/br-stream/last-error/"+task+"/"+strconv.FormatUint(storeID, 10), string(payload)); err != nil {
		return err
	}
	return putPause(ctx, cli, task, pauseV2{Severity: "ERROR",
		PayloadType: "application/x-protobuf;messagetype=brpb.StreamBackupError", Payload: payload})
}

// PauseWithMessage pauses a task by an error with a text message, as TiDB's log backup
// advancer does when the checkpoint lag passes its limit.
func PauseWithMessage(ctx context.Context, cli *clientv3.Client, task, message string) error {
	return putPause(ctx, cli, task, pauseV2{Severity: "ERROR", PayloadType: "text/plain;charset=UTF-8", Payload: []byte(message)})
}

// PauseManually pauses a task as `br log pause` does, with a text message.
func PauseManually(ctx context.Context, cli *clientv3.Client, task, message string) error {
	return putPause(ctx, cli, task, pauseV2{Severity: "REGULAR_OPERATION",
		PayloadType: "text/plain;charset=UTF-8", Payload: []byte(message)})
}

func putPause(ctx context.Context, cli *clientv3.Client, task string, p pauseV2) error {
	host, _ := os.Hostname()
	p.OperatorHostName, p.OperatorPID, p.OperationTime = host, os.Getpid(), time.Now().Format(time.RFC3339)
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = cli.Put(ctx, "/tidb/br-stream/pause/"+task, string(data))
	return err
}

// DeleteTask removes every key of a task, as BR's log stop does.
func DeleteTask(ctx context.Context, cli *clientv3.Client, task string) error {
	_, err := cli.Txn(ctx).Then(
		clientv3.OpDelete("/tidb/br-stream/info/"+task),
		clientv3.OpDelete("/tidb/br-stream/pause/"+task),
		clientv3.OpDelete("/tidb/br-stream/last-error/"+task+"/", clientv3.WithPrefix()),
	).Commit()
	return err
}

func uint64Bytes(v uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return string(b[:])
}

// PutGlobalCheckpoint is the log backup advancer uploading a task's global checkpoint
// (BR's Task.UploadGlobalCheckpoint): an 8-byte big-endian TSO under central_global.
func PutGlobalCheckpoint(ctx context.Context, cli *clientv3.Client, task string, ts uint64) error {
	_, err := cli.Put(ctx, "/tidb/br-stream/checkpoint/"+task+"/central_global", uint64Bytes(ts))
	return err
}

// PutStoreCheckpoint is a TiKV store reporting its checkpoint for a task (BR's Task.Step).
func PutStoreCheckpoint(ctx context.Context, cli *clientv3.Client, task string, store, ts uint64) error {
	_, err := cli.Put(ctx, "/tidb/br-stream/checkpoint/"+task+"/store/"+strconv.FormatUint(store, 10), uint64Bytes(ts))
	return err
}

// PutStorageCheckpoint is a store reporting what it flushed to the backup storage.
func PutStorageCheckpoint(ctx context.Context, cli *clientv3.Client, task string, store, ts uint64) error {
	_, err := cli.Put(ctx, "/tidb/br-stream/storage-checkpoint/"+task+"/"+strconv.FormatUint(store, 10), uint64Bytes(ts))
	return err
}

// PDClusterID is the cluster ID SetGCSafePoint registers.
const PDClusterID uint64 = 7216381298461235431

// SetGCSafePoint is PD saving the cluster's GC safe point: the cluster ID (8 bytes,
// big-endian) under /pd/cluster_id and the safe point, in hexadecimal, under
// /pd/<cluster id>/gc/safe_point (tikv/pd's StorageEndpoint.SaveGCSafePoint).
func SetGCSafePoint(ctx context.Context, cli *clientv3.Client, ts uint64) error {
	_, err := cli.Txn(ctx).Then(
		clientv3.OpPut("/pd/cluster_id", uint64Bytes(PDClusterID)),
		clientv3.OpPut("/pd/"+strconv.FormatUint(PDClusterID, 10)+"/gc/safe_point", strconv.FormatUint(ts, 16)),
	).Commit()
	return err
}

// ResumeTask is BR's log resume: it deletes the pause key (MetaDataClient.ResumeTask).
func ResumeTask(ctx context.Context, cli *clientv3.Client, task string) error {
	_, err := cli.Delete(ctx, "/tidb/br-stream/pause/"+task)
	return err
}
