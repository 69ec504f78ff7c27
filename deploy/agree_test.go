package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/tailgate-dev/tailgate/collector"
)

// The kustomize and Helm renders of the same install, which must agree on what matters.
var agreeing = [][2]string{
	{"kustomize-base", "helm-default"},
	{"kustomize-gke", "helm-gke"},
	{"kustomize-eks", "helm-eks"},
	{"kustomize-gke-loader-prometheus", "helm-gke-loader-prometheus"},
}

// TestKustomizeAndHelmAgree compares, for each pair, what decides how the agent and the loader
// run (not names, labels or the way values reach them): the agent's arguments, its config as
// tailgate reads it (after ${VAR} expansion), its volumes and mounts, env, ports, probes,
// security, resources, scheduling, the RBAC rules, the cloud identity annotations, the loader's
// and the setup Job's arguments (after $(VAR) expansion), and the PodMonitor endpoints.
func TestKustomizeAndHelmAgree(t *testing.T) {
	byName := map[string]render{}
	for _, r := range loadRenders(t) {
		byName[r.name] = r
	}
	for _, pair := range agreeing {
		k, h := byName[pair[0]], byName[pair[1]]
		t.Run(pair[0]+"="+pair[1], func(t *testing.T) {
			same := func(what string, a, b any) {
				t.Helper()
				if !reflect.DeepEqual(a, b) {
					ja, _ := json.MarshalIndent(a, "", "  ")
					jb, _ := json.MarshalIndent(b, "", "  ")
					t.Errorf("%s differ:\nkustomize: %s\nhelm:      %s", what, ja, jb)
				}
			}
			kv, hv := agentView(t, k), agentView(t, h)
			for _, f := range sortedKeys(kv) {
				same("agent "+f, kv[f], hv[f])
			}
			same("RBAC rules", rbacRules(k), rbacRules(h))
			same("service account annotations", saAnnotations(k), saAnnotations(h))
			same("loader", workloadView(t, k, "loader"), workloadView(t, h, "loader"))
			same("setup job", workloadView(t, k, "setup"), workloadView(t, h, "setup"))
			same("loader PodDisruptionBudget", pdbView(k), pdbView(h))
			same("PodMonitor endpoints", podMonitorView(k), podMonitorView(h))
			same("headless metrics services", servicePorts(k), servicePorts(h))
		})
	}
}

// agentView is the agent's DaemonSet reduced to what must agree.
func agentView(t *testing.T, r render) map[string]any {
	t.Helper()
	ds, c := r.agent(t)
	spec := ds.Spec.Template.Spec
	env := r.podEnv(t, spec, c)
	_, raw := r.agentConfig(t)
	mounts := map[string]any{}
	for _, m := range c.VolumeMounts {
		v := volume(spec, m.Name)
		src := "other"
		switch {
		case v.HostPath != nil:
			typ := ""
			if v.HostPath.Type != nil {
				typ = string(*v.HostPath.Type)
			}
			src = "hostPath " + v.HostPath.Path + " " + typ
		case v.ConfigMap != nil:
			src = "configMap (the config)"
		}
		mounts[m.MountPath] = map[string]any{"readOnly": m.ReadOnly, "subPath": m.SubPath, "source": src}
	}
	var explicitEnv []corev1.EnvVar
	explicitEnv = append(explicitEnv, c.Env...)
	sort.Slice(explicitEnv, func(i, j int) bool { return explicitEnv[i].Name < explicitEnv[j].Name })
	pc := r.priorityClass(spec.PriorityClassName)
	var pcValue any = spec.PriorityClassName
	if pc != nil {
		pcValue = pc.Value
	}
	scrape := map[string]string{}
	for k, v := range ds.Spec.Template.Annotations {
		if strings.HasPrefix(k, "prometheus.io/") {
			scrape[k] = v
		}
	}
	return map[string]any{
		"args":                          c.Args,
		"command":                       c.Command,
		"config":                        expandConfig(raw, env),
		"mounts":                        mounts,
		"env":                           explicitEnv,
		"ports":                         c.Ports,
		"probes":                        []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe},
		"securityContext":               c.SecurityContext,
		"podSecurityContext":            spec.SecurityContext,
		"resources":                     c.Resources,
		"tolerations":                   spec.Tolerations,
		"nodeSelector":                  spec.NodeSelector,
		"terminationGracePeriodSeconds": spec.TerminationGracePeriodSeconds,
		"updateStrategy":                ds.Spec.UpdateStrategy,
		"priority":                      pcValue,
		"imagePullPolicy":               c.ImagePullPolicy,
		"scrapeAnnotations":             scrape,
	}
}

func rbacRules(r render) map[string][]rbacv1.PolicyRule {
	out := map[string][]rbacv1.PolicyRule{}
	for _, cr := range all[*rbacv1.ClusterRole](r) {
		out["ClusterRole"] = append(out["ClusterRole"], cr.Rules...)
	}
	return out
}

// saAnnotations: the cloud identity of each component's service account.
func saAnnotations(r render) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, sa := range all[*corev1.ServiceAccount](r) {
		out[sa.Labels["app.kubernetes.io/component"]] = sa.Annotations
	}
	return out
}

// workloadView is the loader Deployment or the setup Job of a component, reduced.
func workloadView(t *testing.T, r render, component string) map[string]any {
	t.Helper()
	var spec *corev1.PodSpec
	var replicas any
	for _, d := range r.deployments() {
		if d.Labels["app.kubernetes.io/component"] == component {
			spec, replicas = &d.Spec.Template.Spec, d.Spec.Replicas
		}
	}
	for _, j := range r.jobs() {
		if j.Labels["app.kubernetes.io/component"] == component {
			spec, replicas = &j.Spec.Template.Spec, j.Spec.BackoffLimit
		}
	}
	if spec == nil {
		return nil
	}
	c := &spec.Containers[0]
	env := r.podEnv(t, *spec, c)
	var args []string
	for _, a := range c.Args {
		args = append(args, expandK8s(a, env))
	}
	ports := c.Ports
	return map[string]any{
		"args": args, "replicas": replicas, "resources": c.Resources, "securityContext": c.SecurityContext,
		"podSecurityContext": spec.SecurityContext, "ports": ports, "automountToken": spec.AutomountServiceAccountToken,
		"grace": spec.TerminationGracePeriodSeconds, "restartPolicy": spec.RestartPolicy,
	}
}

func pdbView(r render) any {
	for _, p := range all[*policyv1.PodDisruptionBudget](r) {
		return p.Spec.MinAvailable
	}
	return nil
}

func podMonitorView(r render) any {
	for _, p := range all[*monitoringv1.PodMonitor](r) {
		return p.Spec.PodMetricsEndpoints
	}
	return nil
}

// servicePorts: headless (metrics) and local (forward) services by component and port name.
func servicePorts(r render) map[string]any {
	out := map[string]any{}
	for _, s := range all[*corev1.Service](r) {
		for _, p := range s.Spec.Ports {
			key := s.Labels["app.kubernetes.io/component"] + "/" + p.Name
			out[key] = map[string]any{"port": p.Port, "target": p.TargetPort, "clusterIP": s.Spec.ClusterIP,
				"internalTrafficPolicy": s.Spec.InternalTrafficPolicy}
		}
	}
	return out
}

// TestKustomizeImagesAgree: the base and every overlay pin the same image as the chart, so a
// release bumps one tag in four places and this test says where it was missed.
func TestKustomizeImagesAgree(t *testing.T) {
	var tags []string
	for _, k := range []string{"kubernetes/base", "kubernetes/overlays/gke", "kubernetes/overlays/eks"} {
		data, err := os.ReadFile(filepath.Join(k, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(string(data), "newTag:")
		if i < 0 {
			t.Fatalf("%s: no images newTag", k)
		}
		tags = append(tags, strings.Fields(string(data[i+len("newTag:"):]))[0])
	}
	for _, tag := range tags[1:] {
		if tag != tags[0] {
			t.Errorf("kustomizations pin %v: want one tag", tags)
		}
	}
}

// TestHelmValuesSchema: values.schema.json makes a typo or a forbidden value fail the install,
// and the chart's own guards fail with a message that says what to do.
func TestHelmValuesSchema(t *testing.T) {
	helm := tool("TAILGATE_HELM", "helm")
	if helm == "" {
		t.Skip("SKIPPED LOUDLY: helm is not available (eval \"$(.ci/tools.sh env)\" sets TAILGATE_HELM)")
	}
	f := func(want string, args ...string) {
		t.Helper()
		out, err := exec.Command(helm, append([]string{"template", "tailgate", "helm/tailgate"}, args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("helm template %v: err %v, want an error containing %q:\n%s", args, err, want, out)
		}
	}
	f("additional properties 'kubernets' not allowed", "--set", "config.kubernets.enabled=true")
	f("additional properties 'tolerration' not allowed", "--set", "tolerration=x")
	f("additional properties 'replica' not allowed", "--set", "loader.replica=3")
	f("/image/tag", "--set", "image.tag=latest")
	f("/config/buffer/when_full", "--set", "config.buffer.when_full=sometimes")
	f("/config/shutdown_timeout", "--set", "config.shutdown_timeout=soon")
	f("loader.enabled needs", "--set", "loader.enabled=true")
	f("setup.enabled needs", "--set", "setup.enabled=true")
	f("needs metrics.service.enabled", "--set", "metrics.serviceMonitor.enabled=true,metrics.service.enabled=false")
	// The PrometheusRule toggle renders the tested rules file as a PrometheusRule.
	out, err := exec.Command(helm, "template", "tailgate", "helm/tailgate", "--set", "metrics.prometheusRule.enabled=true").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kind: PrometheusRule") || !strings.Contains(string(out), "alert: TailgateAgentDown") {
		t.Errorf("helm template with metrics.prometheusRule.enabled: err %v, want a PrometheusRule with the rules:\n%.2000s", err, out)
	}
	// And a correct install with every key of values.yaml set passes.
	if out, err := exec.Command(helm, "lint", "--strict", "helm/tailgate", "-f", "helm/tailgate/values.yaml").CombinedOutput(); err != nil {
		t.Errorf("helm lint of the defaults: %v\n%s", err, out)
	}
}

// TestChartRulesAreTheRulesFile: the chart's PrometheusRule comes from files/prometheus-rules.yaml
// (Helm reads only files inside the chart), a copy of deploy/prometheus/rules.yml, the rules the
// exporter's promtool tests prove. Until that file exists there is nothing to compare.
func TestChartRulesAreTheRulesFile(t *testing.T) {
	src, err := os.ReadFile("prometheus/rules.yml")
	if os.IsNotExist(err) {
		t.Skip("SKIPPED LOUDLY: deploy/prometheus/rules.yml does not exist yet; the chart's PrometheusRule toggle is tested with helm/testdata/sample-rules.yaml")
	}
	if err != nil {
		t.Fatal(err)
	}
	chart, err := os.ReadFile("helm/tailgate/files/prometheus-rules.yaml")
	if err != nil || string(chart) != string(src) {
		t.Fatalf("helm/tailgate/files/prometheus-rules.yaml differs from prometheus/rules.yml (%v): "+
			"cp deploy/prometheus/rules.yml deploy/helm/tailgate/files/prometheus-rules.yaml", err)
	}
}

// TestHelmSchemaKnowsTheConfigKeys: values.schema.json refuses unknown keys in config and its
// sections, so it must list exactly the keys collector.Config reads; a key added to the config
// fails here until the schema has it (and a key the schema invents fails too).
func TestHelmSchemaKnowsTheConfigKeys(t *testing.T) {
	raw, err := os.ReadFile("helm/tailgate/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	type node struct {
		Properties map[string]*node `json:"properties"`
		Items      *node            `json:"items"`
	}
	var schema node
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatal(err)
	}
	cfg := schema.Properties["config"]
	f := func(where string, props map[string]*node, typ reflect.Type) {
		t.Helper()
		var want []string
		for i := 0; i < typ.NumField(); i++ {
			if tag := strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				want = append(want, tag)
			}
		}
		sort.Strings(want)
		if got := sortedKeys(props); !reflect.DeepEqual(got, want) {
			t.Errorf("values.schema.json %s lists %v; collector.%s has %v", where, got, typ.Name(), want)
		}
	}
	f("config", cfg.Properties, reflect.TypeFor[collector.Config]())
	f("config.metrics", cfg.Properties["metrics"].Properties, reflect.TypeFor[collector.MetricsConfig]())
	f("config.buffer", cfg.Properties["buffer"].Properties, reflect.TypeFor[collector.BufferConfig]())
	f("config.kubernetes", cfg.Properties["kubernetes"].Properties, reflect.TypeFor[collector.KubernetesConfig]())
	f("config.routes[]", cfg.Properties["routes"].Items.Properties, reflect.TypeFor[collector.RouteConfig]())
}
