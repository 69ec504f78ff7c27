package tail

import (
	"path/filepath"
	"strings"

	"github.com/tailgate-dev/tailgate/collector"
)

// kubeFromPath derives a container's identity from its log paths, for use until the API watch
// knows better: the real file /var/log/pods/<namespace>_<pod>_<uid>/<container>/<N>.log gives
// all four fields; the symlink /var/log/containers/<pod>_<namespace>_<container>-<id>.log gives
// all but the pod UID. Labels stay empty.
func kubeFromPath(logical, real, node string) *collector.Kube {
	k := &collector.Kube{Node: node}
	if ns, pod, uid, container, ok := fromPodsPath(real); ok {
		k.Namespace, k.Pod, k.PodUID, k.Container = ns, pod, uid, container
		return k
	}
	if ns, pod, uid, container, ok := fromPodsPath(logical); ok {
		k.Namespace, k.Pod, k.PodUID, k.Container = ns, pod, uid, container
		return k
	}
	if pod, ns, container, ok := fromContainersPath(logical); ok {
		k.Namespace, k.Pod, k.Container = ns, pod, container
	}
	return k
}

func fromPodsPath(p string) (ns, pod, uid, container string, ok bool) {
	dir := filepath.Dir(p)
	container = filepath.Base(dir)
	parts := strings.Split(filepath.Base(filepath.Dir(dir)), "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" || container == "" ||
		container == "." || container == "/" {
		return "", "", "", "", false
	}
	return parts[0], parts[1], parts[2], container, true
}

func fromContainersPath(p string) (pod, ns, container string, ok bool) {
	base, found := strings.CutSuffix(filepath.Base(p), ".log")
	if !found {
		return "", "", "", false
	}
	dash := strings.LastIndexByte(base, '-')
	if dash < 0 || len(base)-dash-1 != 64 {
		return "", "", "", false
	}
	parts := strings.Split(base[:dash], "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}
