package app

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/spf13/cobra"

	"github.com/tidb-backup-guard/tidb-backup-guard/defaults"
)

// toolOptions are what explain and audit share: the user's kubeconfig, like kubectl's
// flags, and the output format.
type toolOptions struct {
	Kubeconfig string
	Context    string
	Namespace  string
	Output     string
}

func newToolOptions() *toolOptions { return &toolOptions{Output: "text"} }

func (o *toolOptions) addFlags(c *cobra.Command) {
	fs := c.Flags()
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
	fs.StringVar(&o.Context, "context", o.Context, "The kubeconfig context to use.")
	fs.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "The namespace (default: the context's).")
	fs.StringVarP(&o.Output, "output", "o", o.Output, "Output format: text or json.")
	_ = c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
}

func (o *toolOptions) validate() field.ErrorList {
	if o.Output != "text" && o.Output != "json" {
		return field.ErrorList{field.NotSupported(field.NewPath("--output"), o.Output, []string{"text", "json"})}
	}
	return nil
}

// clientConfig loads the kubeconfig as kubectl does.
func (o *toolOptions) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = o.Kubeconfig
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{
		CurrentContext: o.Context, Context: clientcmdapi.Context{Namespace: o.Namespace}})
}

// client returns a client with the user's credentials, the namespace to default to, and
// the credentials themselves.
func (o *toolOptions) client() (client.Client, string, *rest.Config, error) {
	cc := o.clientConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", nil, fmt.Errorf("namespace from kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, "", nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, "", nil, fmt.Errorf("client: %w", err)
	}
	return c, ns, cfg, nil
}

// resolver returns the configuration the server would use with po: its defaults, with the
// namespace overrides of --namespace-policies read once.
func (o *toolOptions) resolver(ctx context.Context, c client.Reader, po *PolicyOptions, stderr io.Writer) (defaults.Config, defaults.Resolver, error) {
	cfg, _ := po.DefaultsConfig()
	ns, name, ok := po.namespacePolicies()
	if !ok {
		return cfg, cfg, nil
	}
	np := defaults.NewNamespacePolicies(cfg)
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return cfg, np, nil
		}
		return cfg, nil, fmt.Errorf("read namespace policies %s/%s: %w", ns, name, err)
	}
	if errs := np.Update(cm.Data, field.NewPath("data")); len(errs) > 0 {
		// The server keeps its last good value for these; a tool started now has none.
		fmt.Fprintf(stderr, "warning: namespace policies %s/%s: entries not usable, their namespaces get the server's defaults here: %v\n",
			ns, name, errs.ToAggregate())
	}
	return cfg, np, nil
}
