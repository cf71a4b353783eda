package testenv

import (
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// GVKs of TiDB Operator's objects.
var (
	BackupGVK         = schema.GroupVersionKind{Group: "pingcap.com", Version: "v1alpha1", Kind: "Backup"}
	BackupScheduleGVK = schema.GroupVersionKind{Group: "pingcap.com", Version: "v1alpha1", Kind: "BackupSchedule"}
)

// Object parses a YAML or JSON manifest into an unstructured object.
func Object(manifest string) (*unstructured.Unstructured, error) {
	var m map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// Empty returns an empty object of a kind, to Get into.
func Empty(gvk schema.GroupVersionKind) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	return u
}
