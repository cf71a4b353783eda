package reconciler

import (
	"context"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// backupCRD is TiDB Operator's Backup CRD.
const backupCRD = "backups.pingcap.com"

// CanRunResume reports whether TiDB Operator can run log-resume: its installed Backup CRD
// has spec.logSubcommand (log-pause and log-resume came with it, in v1.6.1; v1.6.0 derives
// only log-start, log-stop and log-truncate). A CRD that cannot be read (RBAC, not
// installed yet) counts as able: that is every version since v1.6.1, and the log says so.
// When it cannot, a log backup paused by an error is recorded, not resumed
// (Reconciler.NoResumeHandOff).
func CanRunResume(ctx context.Context, c client.Reader, log logr.Logger) bool {
	crd := &unstructured.Unstructured{}
	crd.SetAPIVersion("apiextensions.k8s.io/v1")
	crd.SetKind("CustomResourceDefinition")
	if err := c.Get(ctx, client.ObjectKey{Name: backupCRD}, crd); err != nil {
		log.Info("Cannot read TiDB Operator's Backup CRD; assuming it can run log-resume (v1.6.1 and later)", "crd", backupCRD, "error", err.Error())
		return true
	}
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		m, _ := v.(map[string]any)
		if _, found, _ := unstructured.NestedMap(m, "schema", "openAPIV3Schema", "properties", "spec", "properties", "logSubcommand"); found {
			return true
		}
	}
	log.Info("TiDB Operator's Backup CRD has no spec.logSubcommand, so TiDB Operator cannot run log-resume: "+
		"log backups paused by an error are recorded and alerted on, not resumed", "crd", backupCRD)
	return false
}
