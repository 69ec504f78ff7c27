package deploy

import (
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// measuredPeakRSS is the agent's peak RSS in bench/RESULTS.md (full-speed catch-up, forward at
// 663k records/s): the memory limit must leave room above it.
var measuredPeakRSS = resource.MustParse("77Mi")

// TestAgentDaemonSet checks what every install of the agent must have, in every render.
func TestAgentDaemonSet(t *testing.T) {
	for _, r := range loadRenders(t) {
		t.Run(r.name, func(t *testing.T) {
			ds, c := r.agent(t)
			spec := ds.Spec.Template.Spec
			_, raw := r.agentConfig(t)
			cfg := expandConfig(raw, r.podEnv(t, spec, c))

			// Hardening.
			sc := c.SecurityContext
			if sc == nil {
				t.Fatal("no securityContext")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("readOnlyRootFilesystem is not true")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("allowPrivilegeEscalation is not false")
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Error("privileged")
			}
			if sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0 {
				t.Errorf("capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil && spec.SecurityContext != nil {
				seccomp = spec.SecurityContext.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("seccomp profile %+v, want RuntimeDefault", seccomp)
			}
			if spec.HostNetwork || spec.HostPID || spec.HostIPC {
				t.Error("host namespaces are shared")
			}
			// Root is only allowed without capabilities (checked above) and is explained in the
			// README; anything else must say runAsNonRoot.
			if sc.RunAsUser == nil || *sc.RunAsUser != 0 {
				if sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
					t.Error("a non-zero runAsUser without runAsNonRoot: true")
				}
			}

			// Probes on the metrics port, which is the port of metrics.listen.
			port := containerPort(c, "metrics")
			listen, _ := dig(cfg, "metrics", "listen").(string)
			if listen == "" || port == 0 || !strings.HasSuffix(listen, ":"+strconv.Itoa(int(port))) {
				t.Errorf("metrics port %d does not match metrics.listen %q", port, listen)
			}
			for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
				want := map[string]string{"liveness": "/healthz", "readiness": "/readyz", "startup": "/healthz"}[name]
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != want || p.HTTPGet.Port != intstr.FromString("metrics") {
					t.Errorf("%s probe %+v, want GET %s on port metrics", name, p, want)
				}
			}

			// NODE_NAME from the downward API, and the config uses it.
			nodeName := false
			for _, e := range c.Env {
				if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
					nodeName = true
				}
			}
			if !nodeName {
				t.Error("NODE_NAME is not set from spec.nodeName")
			}
			if !strings.Contains(raw, "${NODE_NAME}") {
				t.Error("the config does not read ${NODE_NAME}")
			}

			// Every node, every taint, scheduled above ordinary pods, rolled gradually.
			tolerAll := false
			for _, tol := range spec.Tolerations {
				if tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == "" {
					tolerAll = true
				}
			}
			if !tolerAll {
				t.Errorf("tolerations %+v do not tolerate every taint", spec.Tolerations)
			}
			if pc := spec.PriorityClassName; pc == "" || (r.priorityClass(pc) == nil && !strings.HasPrefix(pc, "system-")) {
				t.Errorf("priorityClassName %q is not set or not in the render", pc)
			}
			us := ds.Spec.UpdateStrategy
			if us.Type != "RollingUpdate" || us.RollingUpdate == nil || us.RollingUpdate.MaxUnavailable == nil {
				t.Errorf("updateStrategy %+v, want RollingUpdate with maxUnavailable", us)
			}

			// Resources from the measured footprint; GOMEMLIMIT follows the limit.
			req, lim := c.Resources.Requests, c.Resources.Limits
			if req.Cpu().IsZero() || req.Memory().IsZero() || lim.Memory().IsZero() {
				t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
			}
			if lim.Memory().Cmp(measuredPeakRSS) <= 0 || req.Memory().Cmp(*lim.Memory()) > 0 {
				t.Errorf("memory request %s / limit %s: the limit must be above the measured peak %s", req.Memory(), lim.Memory(), &measuredPeakRSS)
			}
			if _, ok := lim[corev1.ResourceCPU]; ok {
				t.Error("a CPU limit: a throttled agent falls behind")
			}
			goMem := false
			for _, e := range c.Env {
				if e.Name == "GOMEMLIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
					e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" && e.ValueFrom.ResourceFieldRef.Divisor.IsZero() {
					goMem = true
				}
			}
			if !goMem {
				t.Error("GOMEMLIMIT is not taken from limits.memory (in bytes)")
			}

			// The grace period covers shutdown_timeout with room to write the cursors.
			st, _ := dig(cfg, "shutdown_timeout").(string)
			d, err := time.ParseDuration(st)
			if st == "" {
				d = 10 * time.Second // the default
			} else if err != nil {
				t.Fatalf("shutdown_timeout %q: %v", st, err)
			}
			if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second < d+5*time.Second {
				t.Errorf("terminationGracePeriodSeconds %v is not at least shutdown_timeout %s + 5s", g, d)
			}

			// The forward port is declared when the config listens on TCP.
			for _, in := range list(cfg, "inputs") {
				if in["type"] == "forward" && in["listen"] != nil {
					l := in["listen"].(string)
					if p := containerPort(c, "forward"); p == 0 || !strings.HasSuffix(l, ":"+strconv.Itoa(int(p))) {
						t.Errorf("forward input listens on %s, container port forward is %d", l, p)
					}
				}
			}
		})
	}
}

// TestConfigPathsAreMounted: every path the config reads is on a volume of the agent, every path
// it writes is on a writable one (the root filesystem is read-only), and the tail globs' files
// resolve inside what is mounted (the /var/log/containers symlinks point into /var/log/pods).
func TestConfigPathsAreMounted(t *testing.T) {
	for _, r := range loadRenders(t) {
		t.Run(r.name, func(t *testing.T) {
			ds, c := r.agent(t)
			_, raw := r.agentConfig(t)
			cfg := expandConfig(raw, r.podEnv(t, ds.Spec.Template.Spec, c))
			mountOf := func(p string) *corev1.VolumeMount {
				var best *corev1.VolumeMount
				for i, m := range c.VolumeMounts {
					if (p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")) &&
						(best == nil || len(m.MountPath) > len(best.MountPath)) {
						best = &c.VolumeMounts[i]
					}
				}
				return best
			}
			writable := func(what, p string) {
				m := mountOf(p)
				if m == nil || m.ReadOnly {
					t.Errorf("%s %s is not on a writable volume (mount %+v)", what, p, m)
					return
				}
				if v := volume(ds.Spec.Template.Spec, m.Name); v == nil || v.HostPath == nil {
					t.Errorf("%s %s is on %s, which is not a hostPath: it would not survive the pod", what, p, m.Name)
				}
			}
			dataDir, _ := dig(cfg, "data_dir").(string)
			if dataDir == "" {
				dataDir = "/var/lib/tailgate"
			}
			writable("data_dir", dataDir)
			for _, in := range list(cfg, "inputs") {
				switch in["type"] {
				case "tail":
					for _, g := range in["paths"].([]any) {
						dir := literalPrefix(g.(string))
						if mountOf(dir) == nil {
							t.Errorf("tail path %s: %s is not mounted", g, dir)
						}
						// Kubelet's symlinks and their targets.
						if strings.HasPrefix(dir, "/var/log/containers") && mountOf("/var/log/pods/x") == nil {
							t.Errorf("tail path %s: /var/log/pods (the symlinks' targets) is not mounted", g)
						}
					}
				case "forward":
					if s, ok := in["socket"].(string); ok {
						writable("forward socket", s)
					}
				}
			}
			for _, s := range list(cfg, "sinks") {
				if s["type"] == "file" {
					writable("file sink path", s["path"].(string))
				}
			}
		})
	}
}

// literalPrefix is the directory part of a glob before its first meta character.
func literalPrefix(glob string) string {
	if i := strings.IndexAny(glob, "*?["); i >= 0 {
		glob = glob[:i]
	}
	if strings.HasSuffix(glob, "/") {
		return strings.TrimSuffix(glob, "/")
	}
	return path.Dir(glob)
}

// TestRBACOnlyReads: the agent's (and any) role gets, lists and watches pods, nothing else;
// bindings name the service accounts of the render.
func TestRBACOnlyReads(t *testing.T) {
	for _, r := range loadRenders(t) {
		t.Run(r.name, func(t *testing.T) {
			rules := map[string][]rbacv1.PolicyRule{}
			for _, cr := range all[*rbacv1.ClusterRole](r) {
				rules[cr.Name] = cr.Rules
			}
			for _, role := range all[*rbacv1.Role](r) {
				rules[role.Name] = role.Rules
			}
			for name, rs := range rules {
				for _, rule := range rs {
					for _, v := range rule.Verbs {
						if v != "get" && v != "list" && v != "watch" {
							t.Errorf("role %s may %s", name, v)
						}
					}
					for _, res := range rule.Resources {
						if res != "pods" {
							t.Errorf("role %s reaches %s (only pods are read)", name, res)
						}
					}
					for _, g := range rule.APIGroups {
						if g != "" {
							t.Errorf("role %s reaches API group %q", name, g)
						}
					}
					if len(rule.NonResourceURLs) > 0 || len(rule.ResourceNames) > 0 {
						t.Errorf("role %s: unexpected rule %+v", name, rule)
					}
				}
			}
			ds, _ := r.agent(t)
			bound := false
			for _, b := range all[*rbacv1.ClusterRoleBinding](r) {
				if _, ok := rules[b.RoleRef.Name]; !ok {
					t.Errorf("binding %s refers to role %s, which is not in the render", b.Name, b.RoleRef.Name)
				}
				for _, s := range b.Subjects {
					if s.Kind != "ServiceAccount" || r.serviceAccount(s.Name) == nil || s.Namespace != ds.Namespace {
						t.Errorf("binding %s: subject %+v is not a service account of the render in %s", b.Name, s, ds.Namespace)
					}
					if s.Name == ds.Spec.Template.Spec.ServiceAccountName {
						bound = true
					}
				}
			}
			if !bound {
				t.Error("the agent's service account is bound to no role: it cannot watch pods")
			}
			for _, d := range r.deployments() {
				if a := d.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a {
					t.Errorf("Deployment %s mounts an API token it does not use", d.Name)
				}
			}
		})
	}
}

// TestImagesArePinned: every container runs the chart's appVersion from the same repository,
// never `latest`, in every render.
func TestImagesArePinned(t *testing.T) {
	chart, err := os.ReadFile("helm/tailgate/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(chart, &meta); err != nil || meta.AppVersion == "" {
		t.Fatalf("Chart.yaml appVersion: %v %q", err, meta.AppVersion)
	}
	want := "ghcr.io/tailgate-dev/tailgate:" + meta.AppVersion
	tagged := regexp.MustCompile(`^[^:@]+(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?(@sha256:[a-f0-9]{64})?$`)
	for _, r := range loadRenders(t) {
		var specs []corev1.PodSpec
		for _, d := range r.daemonSets() {
			specs = append(specs, d.Spec.Template.Spec)
		}
		for _, d := range r.deployments() {
			specs = append(specs, d.Spec.Template.Spec)
		}
		for _, j := range r.jobs() {
			specs = append(specs, j.Spec.Template.Spec)
		}
		for _, s := range specs {
			for _, c := range append(s.InitContainers, s.Containers...) {
				if c.Image != want || !tagged.MatchString(c.Image) || strings.HasSuffix(c.Image, ":latest") {
					t.Errorf("%s: container %s runs %s, want %s", r.name, c.Name, c.Image, want)
				}
			}
		}
	}
}

func containerPort(c *corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func list(m map[string]any, key string) []map[string]any {
	var out []map[string]any
	items, _ := m[key].([]any)
	for _, it := range items {
		if mm, ok := it.(map[string]any); ok {
			out = append(out, mm)
		}
	}
	return out
}
