package testenv

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/tidb-backup-guard/tidb-backup-guard/webhook"
)

// Match conditions of the validating webhooks: an UPDATE reaches them only when it
// changes a retry policy (or a schedule template's backupMode), the only UPDATE they can
// reject. Status writes by TiDB Operator
// and the backup-manager then never depend on this server being up.
const (
	ValidateBackupCondition   = `request.operation != 'UPDATE' || (has(object.spec) && has(object.spec.backoffRetryPolicy) ? object.spec.backoffRetryPolicy : {}) != (has(oldObject.spec) && has(oldObject.spec.backoffRetryPolicy) ? oldObject.spec.backoffRetryPolicy : {})`
	ValidateScheduleCondition = `request.operation != 'UPDATE' || (has(object.spec) && has(object.spec.backupTemplate) && has(object.spec.backupTemplate.backoffRetryPolicy) ? object.spec.backupTemplate.backoffRetryPolicy : {}) != (has(oldObject.spec) && has(oldObject.spec.backupTemplate) && has(oldObject.spec.backupTemplate.backoffRetryPolicy) ? oldObject.spec.backupTemplate.backoffRetryPolicy : {}) || (has(object.spec) && has(object.spec.logBackupTemplate) && has(object.spec.logBackupTemplate.backoffRetryPolicy) ? object.spec.logBackupTemplate.backoffRetryPolicy : {}) != (has(oldObject.spec) && has(oldObject.spec.logBackupTemplate) && has(oldObject.spec.logBackupTemplate.backoffRetryPolicy) ? oldObject.spec.logBackupTemplate.backoffRetryPolicy : {}) || (has(object.spec) && has(object.spec.backupTemplate) && has(object.spec.backupTemplate.backupMode) ? object.spec.backupTemplate.backupMode : '') != (has(oldObject.spec) && has(oldObject.spec.backupTemplate) && has(oldObject.spec.backupTemplate.backupMode) ? oldObject.spec.backupTemplate.backupMode : '') || (has(object.spec) && has(object.spec.logBackupTemplate) && has(object.spec.logBackupTemplate.backupMode) ? object.spec.logBackupTemplate.backupMode : '') != (has(oldObject.spec) && has(oldObject.spec.logBackupTemplate) && has(oldObject.spec.logBackupTemplate.backupMode) ? oldObject.spec.logBackupTemplate.backupMode : '') || (has(object.spec) && has(object.spec.logBackupTemplate)) != (has(oldObject.spec) && has(oldObject.spec.logBackupTemplate)) || (has(object.spec) && has(object.spec.maxBackups) ? object.spec.maxBackups : -1) != (has(oldObject.spec) && has(oldObject.spec.maxBackups) ? oldObject.spec.maxBackups : -1) || (has(object.spec) && has(object.spec.maxReservedTime)) != (has(oldObject.spec) && has(oldObject.spec.maxReservedTime))`
)

// Names of the webhook configurations the tests register.
const (
	MutatingConfigName   = "tidb-backup-guard-mutating"
	ValidatingConfigName = "tidb-backup-guard-validating"
)

// WebhookConfigs returns the two webhook configurations, calling baseURL (https://host:port)
// and trusting caBundle. They are shaped like the chart's: admission.k8s.io/v1 only, no
// side effects (so server-side dry-run works), and a match condition that sends only log
// Backups to the mutating webhook. failurePolicy Fail everywhere: a test must see a
// webhook that does not answer.
func WebhookConfigs(baseURL string, caBundle []byte) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration) {
	rule := func(resource string, ops ...admissionregistrationv1.OperationType) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{
			Operations: ops,
			Rule: admissionregistrationv1.Rule{
				APIGroups:   []string{"pingcap.com"},
				APIVersions: []string{"v1alpha1"},
				Resources:   []string{resource},
				Scope:       ptr.To(admissionregistrationv1.NamespacedScope),
			},
		}}
	}
	cc := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{URL: ptr.To(baseURL + path), CABundle: caBundle}
	}
	none := ptr.To(admissionregistrationv1.SideEffectClassNone)
	fail := ptr.To(admissionregistrationv1.Fail)
	versions := []string{"v1"}
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: MutatingConfigName},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			{
				Name: "mutate-backup.tidb-backup-guard.io", ClientConfig: cc(webhook.MutateBackupPath),
				Rules:       rule("backups", admissionregistrationv1.Create),
				SideEffects: none, FailurePolicy: fail, AdmissionReviewVersions: versions, TimeoutSeconds: ptr.To[int32](5),
				MatchConditions: []admissionregistrationv1.MatchCondition{{
					Name:       "log-backups-only",
					Expression: `has(object.spec) && has(object.spec.backupMode) && object.spec.backupMode == 'log'`,
				}},
			},
			{
				Name: "mutate-backupschedule.tidb-backup-guard.io", ClientConfig: cc(webhook.MutateBackupSchedulePath),
				Rules:       rule("backupschedules", admissionregistrationv1.Create),
				SideEffects: none, FailurePolicy: fail, AdmissionReviewVersions: versions, TimeoutSeconds: ptr.To[int32](5),
				MatchConditions: []admissionregistrationv1.MatchCondition{{
					Name:       "log-template-only",
					Expression: `has(object.spec) && has(object.spec.logBackupTemplate)`,
				}},
			},
		},
	}
	validating := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ValidatingConfigName},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			{
				Name: "validate-backup.tidb-backup-guard.io", ClientConfig: cc(webhook.ValidateBackupPath),
				Rules:       rule("backups", admissionregistrationv1.Create, admissionregistrationv1.Update),
				SideEffects: none, FailurePolicy: fail, AdmissionReviewVersions: versions, TimeoutSeconds: ptr.To[int32](5),
				MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "policy-changed", Expression: ValidateBackupCondition}},
			},
			{
				Name: "validate-backupschedule.tidb-backup-guard.io", ClientConfig: cc(webhook.ValidateBackupSchedulePath),
				Rules:       rule("backupschedules", admissionregistrationv1.Create, admissionregistrationv1.Update),
				SideEffects: none, FailurePolicy: fail, AdmissionReviewVersions: versions, TimeoutSeconds: ptr.To[int32](5),
				MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "policy-changed", Expression: ValidateScheduleCondition}},
			},
		},
	}
	return mutating, validating
}

// RegisterWebhooks creates (or replaces) both webhook configurations.
func RegisterWebhooks(ctx context.Context, c client.Client, baseURL string, caBundle []byte) error {
	return RegisterWebhooksSelecting(ctx, c, baseURL, caBundle, nil)
}

// RegisterWebhooksSelecting is RegisterWebhooks for the namespaces selector selects (nil:
// all), as the chart's webhook.namespaceSelector value does.
func RegisterWebhooksSelecting(ctx context.Context, c client.Client, baseURL string, caBundle []byte, selector *metav1.LabelSelector) error {
	m, v := WebhookConfigs(baseURL, caBundle)
	for i := range m.Webhooks {
		m.Webhooks[i].NamespaceSelector = selector
	}
	for i := range v.Webhooks {
		v.Webhooks[i].NamespaceSelector = selector
	}
	for _, obj := range []client.Object{m, v} {
		err := c.Create(ctx, obj)
		if apierrors.IsAlreadyExists(err) {
			err = c.Delete(ctx, obj)
			if err == nil {
				obj.SetResourceVersion("")
				err = c.Create(ctx, obj)
			}
		}
		if err != nil {
			return fmt.Errorf("register %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

// UnregisterWebhooks deletes both configurations (missing ones are fine).
func UnregisterWebhooks(ctx context.Context, c client.Client) error {
	m, v := WebhookConfigs("", nil)
	for _, obj := range []client.Object{m, v} {
		if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("unregister %s: %w", obj.GetName(), err)
		}
	}
	return nil
}
