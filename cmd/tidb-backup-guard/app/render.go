package app

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/tidb-backup-guard/tidb-backup-guard/webhook/admissionpolicy"
)

// renderPolicies writes the CEL mode's objects (webhook/admissionpolicy): the params
// ConfigMap with the configured defaults, the Mutating- and ValidatingAdmissionPolicies and
// their bindings, as one YAML stream for kubectl apply.
func renderPolicies(args []string, stdout, stderr io.Writer, name string) int {
	fs := pflag.NewFlagSet("render-policies", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	po := NewOptions().PolicyOptions
	po.AddFlags(fs)
	namespace := os.Getenv("POD_NAMESPACE")
	if namespace == "" {
		namespace = "tidb-admin"
	}
	fs.StringVar(&namespace, "namespace", namespace, "Namespace of the params ConfigMap (where tidb-backup-guard runs).")
	prefix := "tidb-backup-guard"
	fs.StringVar(&prefix, "name-prefix", prefix, "Start of every object's name.")
	selector := ""
	fs.StringVar(&selector, "namespace-selector", selector, "Label selector of the namespaces the policies apply in (as webhook.namespaceSelector); empty: all.")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s render-policies [flags] | kubectl apply -f -\n\n%s", name, fs.FlagUsages())
	}
	if code, ok := parseFlags(fs, args, stderr, name+" render-policies"); !ok {
		return code
	}
	cfg, errs := po.DefaultsConfig()
	if po.NamespacePolicies != "" {
		// The policies read one params object; per-namespace overrides are webhook mode's.
		errs = append(errs, field.Forbidden(field.NewPath("--namespace-policies"), "per-namespace policies are not available in CEL mode"))
	}
	var sel *metav1.LabelSelector
	if selector != "" {
		s, err := metav1.ParseToLabelSelector(selector)
		if err != nil {
			fmt.Fprintf(stderr, "%s render-policies: --namespace-selector: %v\n", name, err)
			return 2
		}
		sel = s
	}
	if len(errs) > 0 {
		fmt.Fprintf(stderr, "%s render-policies: %v\n", name, errs.ToAggregate())
		return 2
	}
	out, err := admissionpolicy.YAML(admissionpolicy.Render(cfg, admissionpolicy.Options{
		Prefix: prefix, ParamsNamespace: namespace, NamespaceSelector: sel,
		Labels: map[string]string{"app.kubernetes.io/name": "tidb-backup-guard", "app.kubernetes.io/component": "admission-policy"},
	}))
	if err != nil {
		fmt.Fprintf(stderr, "%s render-policies: %v\n", name, err)
		return 1
	}
	_, err = stdout.Write(out)
	if err != nil {
		return 1
	}
	return 0
}
