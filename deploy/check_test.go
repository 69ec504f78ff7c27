package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// binaryPath is the entrypoint of the image (deploy/image BinaryPath).
const binaryPath = "/usr/local/bin/tailgate"

var (
	rootfsOnce sync.Once
	rootfsDir  string
	rootfsErr  error
)

// imageRootFS builds the image's filesystem for this machine's architecture with the
// daemon-free builder (deploy/image), once per test binary.
func imageRootFS(t *testing.T) string {
	t.Helper()
	rootfsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tailgate-rootfs-")
		if err != nil {
			rootfsErr = err
			return
		}
		rootfsDir = dir
		src, _ := filepath.Abs("..")
		cmd := exec.Command("go", "run", ".", "-src", src, "-platforms", "linux/"+runtime.GOARCH,
			"-version", "v0.0.0-test", "-commit", "test", "-modified", "false", "-date", "2026-12-01T00:00:00Z",
			"-rootfs", filepath.Join(dir, "rootfs"))
		cmd.Dir = "image"
		if out, err := cmd.CombinedOutput(); err != nil {
			rootfsErr = fmt.Errorf("go run ./deploy/image -rootfs: %v\n%s", err, out)
		}
	})
	if rootfsErr != nil {
		t.Fatal(rootfsErr)
	}
	return filepath.Join(rootfsDir, "rootfs")
}

// podRoot lays out what container c of a pod would see: the image's files plus each volume at
// its mount path. A hostPath of /var/log has what the kubelet creates there on every node
// (containers/, pods/); a ConfigMap volume holds the ConfigMap's keys as files.
func podRoot(t *testing.T, r render, spec corev1.PodSpec, c *corev1.Container) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	if err := os.CopyFS(root, os.DirFS(imageRootFS(t))); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.VolumeMounts {
		v := volume(spec, m.Name)
		if v == nil {
			t.Fatalf("%s: mount %s names no volume", r.name, m.Name)
		}
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case v.HostPath != nil:
			if v.HostPath.Path == "/var/log" {
				os.MkdirAll(filepath.Join(dir, "containers"), 0o755)
				os.MkdirAll(filepath.Join(dir, "pods"), 0o755)
			}
		case v.ConfigMap != nil:
			cm := r.configMap(v.ConfigMap.Name)
			if cm == nil {
				t.Fatalf("%s: ConfigMap %s is not in the render", r.name, v.ConfigMap.Name)
			}
			for k, data := range cm.Data {
				if err := os.WriteFile(filepath.Join(dir, k), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		case v.EmptyDir != nil, v.Projected != nil, v.Secret != nil:
		default:
			t.Fatalf("%s: volume %s: source not modelled", r.name, v.Name)
		}
	}
	return root
}

// inPod runs the image's binary with args in root (chroot), with exactly env, as the
// container's user.
func inPod(t *testing.T, root string, sc *corev1.SecurityContext, env map[string]string, args []string) (string, error) {
	t.Helper()
	cmd := exec.Command(binaryPath, args...)
	cmd.Dir = "/"
	cmd.Env = []string{}
	for _, k := range sortedKeys(env) {
		cmd.Env = append(cmd.Env, k+"="+env[k])
	}
	attr := &syscall.SysProcAttr{Chroot: root}
	if sc != nil && sc.RunAsUser != nil {
		gid := uint32(0)
		if sc.RunAsGroup != nil {
			gid = uint32(*sc.RunAsGroup)
		}
		attr.Credential = &syscall.Credential{Uid: uint32(*sc.RunAsUser), Gid: gid}
	}
	cmd.SysProcAttr = attr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED LOUDLY: running the image's binary inside the pod's filesystem needs chroot, i.e. root " +
			"(CI runs as root); the static checks of TestConfigPathsAreMounted still ran")
	}
}

// TestConfigsPassTailgateCheck runs `tailgate check` exactly as the agent container would run
// `tailgate run`: the image's binary, chrooted into the image's files plus the pod's volumes,
// with the pod's environment (NODE_NAME, the overlay's params ConfigMap) and user. A config
// that names a sink this build does not have fails here, as it would fail in the cluster.
func TestConfigsPassTailgateCheck(t *testing.T) {
	rs := loadRenders(t)
	needRoot(t)
	for _, r := range rs {
		t.Run(r.name, func(t *testing.T) {
			ds, c := r.agent(t)
			spec := ds.Spec.Template.Spec
			if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "run" {
				t.Fatalf("the agent runs %v %v, want the image's entrypoint with args run ...", c.Command, c.Args)
			}
			root := podRoot(t, r, spec, c)
			env := r.podEnv(t, spec, c)
			args := append([]string{"check"}, c.Args[1:]...)
			out, err := inPod(t, root, c.SecurityContext, env, args)
			if err != nil || !strings.HasSuffix(strings.TrimSpace(out), ": ok") {
				t.Errorf("tailgate %s in the pod's filesystem: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// TestLoaderAndSetupArgsParse gives the loader Deployment's and the setup Job's arguments (after
// the kubelet's $(VAR) expansion) to the image's binary with --help appended: every flag must
// exist and every value parse, or the pods would crash-loop.
func TestLoaderAndSetupArgsParse(t *testing.T) {
	rs := loadRenders(t)
	needRoot(t)
	n := 0
	for _, r := range rs {
		var pods []struct {
			what string
			spec corev1.PodSpec
		}
		for _, d := range r.deployments() {
			pods = append(pods, struct {
				what string
				spec corev1.PodSpec
			}{"Deployment " + d.Name, d.Spec.Template.Spec})
		}
		for _, j := range r.jobs() {
			pods = append(pods, struct {
				what string
				spec corev1.PodSpec
			}{"Job " + j.Name, j.Spec.Template.Spec})
		}
		for _, p := range pods {
			t.Run(r.name+"/"+p.what, func(t *testing.T) {
				n++
				c := &p.spec.Containers[0]
				root := podRoot(t, r, p.spec, c)
				env := r.podEnv(t, p.spec, c)
				var args []string
				for _, a := range c.Args {
					args = append(args, expandK8s(a, env))
				}
				sc := c.SecurityContext.DeepCopy()
				if ps := p.spec.SecurityContext; ps != nil && sc.RunAsUser == nil {
					sc.RunAsUser, sc.RunAsGroup = ps.RunAsUser, ps.RunAsGroup
				}
				out, _ := inPod(t, root, sc, env, append(args, "--help"))
				for _, bad := range []string{"flag provided but not defined", "invalid value", "$("} {
					if strings.Contains(out, bad) {
						t.Errorf("tailgate %s:\n%s", strings.Join(args, " "), out)
						break
					}
				}
				if !strings.Contains(out, "-project") {
					t.Errorf("tailgate %s --help printed no usage (the flags were not reached):\n%s", strings.Join(args, " "), out)
				}
				for _, a := range args {
					if strings.HasSuffix(a, "=") {
						t.Errorf("empty flag value %q (a parameter is missing)", a)
					}
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no loader or setup pod in any render")
	}
}
