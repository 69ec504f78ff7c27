// Package deploy holds the manifests (kustomize, Helm) and the tests that prove them: every
// render decodes strictly with client-go's scheme, the agent's DaemonSet is hardened and probed,
// RBAC only reads, each ConfigMap's config passes `tailgate check` inside the image's filesystem
// with the pod's mounts and environment, and the kustomize and Helm renders agree.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// renderNames are the files deploy/render.sh writes.
var renderNames = []string{
	"kustomize-base", "kustomize-gke", "kustomize-eks", "kustomize-gke-loader-prometheus", "kustomize-eks-prometheus",
	"helm-default", "helm-gke", "helm-eks", "helm-gke-loader-prometheus",
}

// render is one rendered install: its objects, decoded strictly.
type render struct {
	name string
	objs []runtime.Object
}

var (
	renderOnce sync.Once
	renders    []render
	renderErr  error
	renderSkip string
)

// loadRenders runs deploy/render.sh once for the whole package.
func loadRenders(t *testing.T) []render {
	t.Helper()
	renderOnce.Do(func() {
		kubectl, helm := tool("TAILGATE_KUBECTL", "kubectl"), tool("TAILGATE_HELM", "helm")
		if kubectl == "" || helm == "" {
			renderSkip = "SKIPPED LOUDLY: the manifests are not rendered: kubectl and helm are needed " +
				"(eval \"$(.ci/tools.sh env)\" sets TAILGATE_KUBECTL and TAILGATE_HELM; .ci/run does)"
			return
		}
		dir, err := os.MkdirTemp("", "tailgate-renders-")
		if err != nil {
			renderErr = err
			return
		}
		defer os.RemoveAll(dir)
		cmd := exec.Command("bash", "render.sh", dir)
		cmd.Env = append(os.Environ(), "TAILGATE_KUBECTL="+kubectl, "TAILGATE_HELM="+helm)
		if out, err := cmd.CombinedOutput(); err != nil {
			renderErr = errors.New("deploy/render.sh: " + err.Error() + "\n" + string(out))
			return
		}
		for _, name := range renderNames {
			data, err := os.ReadFile(filepath.Join(dir, name+".yaml"))
			if err != nil {
				renderErr = err
				return
			}
			objs, err := decodeStrict(data)
			if err != nil {
				renderErr = errors.New(name + ": " + err.Error())
				return
			}
			renders = append(renders, render{name: name, objs: objs})
		}
	})
	if renderSkip != "" {
		t.Skip(renderSkip)
	}
	if renderErr != nil {
		t.Fatal(renderErr)
	}
	return renders
}

// tool is the binary named by env, or cmd on PATH, or "".
func tool(env, cmd string) string {
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, _ := exec.LookPath(cmd)
	return p
}

// scheme knows every kind the renders may hold: client-go's built-in types and the Prometheus
// Operator's monitoring.coreos.com/v1.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := monitoringv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// decodeStrict decodes every YAML document into its typed object: an unknown or duplicate
// field, an unknown kind or a wrongly typed value is an error.
func decodeStrict(data []byte) ([]runtime.Object, error) {
	ser := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Yaml: true, Strict: true})
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, err
		}
		if len(probe) == 0 {
			continue // comments only
		}
		obj, gvk, err := ser.Decode(doc, nil, nil)
		if err != nil {
			return nil, errors.New("strict decode: " + err.Error() + "\n" + firstLines(doc, 6))
		}
		if gvk.Kind == "" {
			return nil, errors.New("object without a kind:\n" + firstLines(doc, 6))
		}
		objs = append(objs, obj)
	}
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// Typed lookups. Kustomize suffixes generated ConfigMaps with a hash; lookups by the name the
// workload uses see through that because the workloads carry the suffixed name.

func (r render) daemonSets() []*appsv1.DaemonSet { return all[*appsv1.DaemonSet](r) }
func (r render) deployments() []*appsv1.Deployment {
	return all[*appsv1.Deployment](r)
}
func (r render) jobs() []*batchv1.Job { return all[*batchv1.Job](r) }

func all[T runtime.Object](r render) []T {
	var out []T
	for _, o := range r.objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// named is the object of type T called name, or nil (T's zero value).
func named[T interface {
	runtime.Object
	GetName() string
}](r render, name string) T {
	var zero T
	for _, o := range all[T](r) {
		if o.GetName() == name {
			return o
		}
	}
	return zero
}

func (r render) configMap(name string) *corev1.ConfigMap { return named[*corev1.ConfigMap](r, name) }
func (r render) serviceAccount(name string) *corev1.ServiceAccount {
	return named[*corev1.ServiceAccount](r, name)
}
func (r render) priorityClass(name string) *schedulingv1.PriorityClass {
	return named[*schedulingv1.PriorityClass](r, name)
}

// agent is the render's single DaemonSet and its tailgate container.
func (r render) agent(t *testing.T) (*appsv1.DaemonSet, *corev1.Container) {
	t.Helper()
	ds := r.daemonSets()
	if len(ds) != 1 {
		t.Fatalf("%s: %d DaemonSets, want 1", r.name, len(ds))
	}
	if len(ds[0].Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("%s: the DaemonSet has %d containers, want 1", r.name, len(ds[0].Spec.Template.Spec.Containers))
	}
	return ds[0], &ds[0].Spec.Template.Spec.Containers[0]
}

// agentConfig is the tailgate.yaml the agent reads (from the ConfigMap mounted at the
// directory of its --config argument) and that file's path.
func (r render) agentConfig(t *testing.T) (path string, raw string) {
	t.Helper()
	ds, c := r.agent(t)
	path = flagValue(c.Args, "--config")
	if path == "" {
		t.Fatalf("%s: the agent has no --config argument: %v", r.name, c.Args)
	}
	for _, m := range c.VolumeMounts {
		if m.MountPath != filepath.Dir(path) {
			continue
		}
		if m.SubPath != "" {
			t.Errorf("%s: the config is mounted with subPath: a ConfigMap change would never reach the pod", r.name)
		}
		v := volume(ds.Spec.Template.Spec, m.Name)
		if v == nil || v.ConfigMap == nil {
			t.Fatalf("%s: %s is not a ConfigMap volume", r.name, m.MountPath)
		}
		cm := r.configMap(v.ConfigMap.Name)
		if cm == nil {
			t.Fatalf("%s: ConfigMap %s is not in the render", r.name, v.ConfigMap.Name)
		}
		data, ok := cm.Data[filepath.Base(path)]
		if !ok {
			t.Fatalf("%s: ConfigMap %s has no key %s", r.name, cm.Name, filepath.Base(path))
		}
		return path, data
	}
	t.Fatalf("%s: nothing is mounted at %s", r.name, filepath.Dir(path))
	return "", ""
}

func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// podEnv is the environment the kubelet would give container c: env (with $(VAR) references
// to earlier entries), envFrom ConfigMaps of the render, downward API values for node "node-1".
func (r render) podEnv(t *testing.T, spec corev1.PodSpec, c *corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Fatalf("%s: envFrom other than a ConfigMap: %+v", r.name, ef)
		}
		cm := r.configMap(ef.ConfigMapRef.Name)
		if cm == nil {
			t.Fatalf("%s: envFrom ConfigMap %s is not in the render", r.name, ef.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expandK8s(e.Value, env)
		case e.ValueFrom.FieldRef != nil:
			v := map[string]string{"spec.nodeName": "node-1", "metadata.name": "tailgate-x1", "metadata.namespace": "tailgate",
				"status.hostIP": "10.1.2.3", "status.podIP": "10.4.5.6"}[e.ValueFrom.FieldRef.FieldPath]
			if v == "" {
				t.Fatalf("%s: env %s: fieldRef %s is not modelled", r.name, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = v
		case e.ValueFrom.ResourceFieldRef != nil:
			q, ok := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
			if !ok {
				t.Fatalf("%s: env %s refers to %s, which is not set", r.name, e.Name, e.ValueFrom.ResourceFieldRef.Resource)
			}
			env[e.Name] = q.AsDec().String()
		default:
			t.Fatalf("%s: env %s: source not modelled: %+v", r.name, e.Name, e.ValueFrom)
		}
	}
	return env
}

// expandK8s replaces $(VAR) as the kubelet does in env values and args: defined variables only,
// $$ for a literal $.
func expandK8s(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '$' && i+1 < len(s) {
			if s[i+1] == '$' {
				b.WriteByte('$')
				i++
				continue
			}
			if s[i+1] == '(' {
				if end := strings.IndexByte(s[i+2:], ')'); end >= 0 {
					if v, ok := env[s[i+2:i+2+end]]; ok {
						b.WriteString(v)
						i += 2 + end
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// expandConfig is the config as tailgate reads it: ${VAR} from the pod's environment.
func expandConfig(raw string, env map[string]string) map[string]any {
	expanded := os.Expand(raw, func(k string) string { return env[k] })
	var m map[string]any
	if err := yaml.Unmarshal([]byte(expanded), &m); err != nil {
		panic(err)
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestRendersDecodeStrictly(t *testing.T) {
	rs := loadRenders(t)
	if len(rs) != len(renderNames) {
		t.Fatalf("%d renders, want %d", len(rs), len(renderNames))
	}
	for _, r := range rs {
		kinds := map[string]int{}
		for _, o := range r.objs {
			kinds[o.GetObjectKind().GroupVersionKind().Kind]++
		}
		for _, k := range []string{"DaemonSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Service"} {
			if kinds[k] == 0 {
				t.Errorf("%s: no %s (kinds: %v)", r.name, k, kinds)
			}
		}
		if strings.Contains(r.name, "loader") && (kinds["Deployment"] != 1 || kinds["PodDisruptionBudget"] != 1) {
			t.Errorf("%s: want the loader Deployment and its PodDisruptionBudget: %v", r.name, kinds)
		}
		if strings.Contains(r.name, "prometheus") && kinds["PodMonitor"] != 1 {
			t.Errorf("%s: want a PodMonitor: %v", r.name, kinds)
		}
		// The rules and the dashboard need the per-pod series' own namespace and pod labels.
		for _, pm := range all[*monitoringv1.PodMonitor](r) {
			for _, e := range pm.Spec.PodMetricsEndpoints {
				if !e.HonorLabels {
					t.Errorf("%s: PodMonitor %s endpoint %v without honorLabels: true", r.name, pm.Name, e.Port)
				}
			}
		}
		for _, sm := range all[*monitoringv1.ServiceMonitor](r) {
			for _, e := range sm.Spec.Endpoints {
				if !e.HonorLabels {
					t.Errorf("%s: ServiceMonitor %s endpoint %s without honorLabels: true", r.name, sm.Name, e.Port)
				}
			}
		}
		if strings.Contains(r.name, "gke") && kinds["Job"] != 1 {
			t.Errorf("%s: want the bigquery setup Job: %v", r.name, kinds)
		}
	}
	// The decoder itself refuses what the API server's strict validation refuses.
	for _, bad := range []string{
		"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec: {templat: {}}\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, name: y}\n",
		"apiVersion: monitoring.coreos.com/v1\nkind: PodMonitor\nmetadata: {name: x}\nspec: {podMetricEndpoints: []}\n",
	} {
		if _, err := decodeStrict([]byte(bad)); err == nil {
			t.Errorf("strict decoding accepted:\n%s", bad)
		}
	}
}
