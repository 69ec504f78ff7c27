package collector

import (
	"fmt"
	"path"

	"k8s.io/apimachinery/pkg/labels"
)

// Router picks the sinks of a source's records. Routes match on source-level facts (input
// name, Kubernetes metadata) and the stream, so a decision is made once per source version
// and stream, never per record. The first route that matches wins.
type Router struct {
	routes []route
	sinks  []string
}

type route struct {
	match    RouteMatch
	selector labels.Selector // nil: no selector
	stream   Stream          // StreamUnknown: any
	mask     uint64          // RouteDrop for sinks: []
}

// maxSinks is the number of sinks a route mask can address; the top bit is RouteDrop.
const maxSinks = 63

// RouteDrop is the mask of a route with sinks: []: its records are dropped on purpose, and
// counted as such, not as unrouted.
const RouteDrop uint64 = 1 << 63

// NewRouter compiles routes over the named sinks. No routes means every sink gets everything.
func NewRouter(routes []RouteConfig, sinks []string) (*Router, error) {
	if len(sinks) > maxSinks {
		return nil, fmt.Errorf("%d sinks configured, at most %d supported", len(sinks), maxSinks)
	}
	idx := make(map[string]int, len(sinks))
	for i, s := range sinks {
		idx[s] = i
	}
	r := &Router{sinks: sinks}
	for i, rc := range routes {
		var mask uint64
		for _, name := range rc.Sinks {
			j, ok := idx[name]
			if !ok {
				return nil, fmt.Errorf("routes[%d]: unknown sink %q", i, name)
			}
			mask |= 1 << j
		}
		if len(rc.Sinks) == 0 {
			mask = RouteDrop
		}
		for _, pat := range rc.Match.patterns() {
			if _, err := path.Match(pat, ""); err != nil {
				return nil, fmt.Errorf("routes[%d]: bad pattern %q: %w", i, pat, err)
			}
		}
		rt := route{match: rc.Match, mask: mask}
		if sel := rc.Match.Labels.Selector; sel != "" {
			s, err := labels.Parse(sel)
			if err != nil {
				return nil, fmt.Errorf("routes[%d]: bad label selector %q: %w", i, sel, err)
			}
			rt.selector = s
		}
		st, err := parseStream(rc.Match.Stream)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		rt.stream = st
		r.routes = append(r.routes, rt)
	}
	return r, nil
}

// parseStream reads a route's stream: "" (any), stdout, stderr or app.
func parseStream(s string) (Stream, error) {
	switch s {
	case "":
		return StreamUnknown, nil
	case "stdout":
		return StreamStdout, nil
	case "stderr":
		return StreamStderr, nil
	case "app":
		return StreamApp, nil
	}
	return StreamUnknown, fmt.Errorf("stream %q is not one of stdout, stderr, app", s)
}

// Sinks returns the sink names in mask order.
func (r *Router) Sinks() []string { return r.sinks }

// Route returns the sinks any stream of s may go to: what a version 1 frame, which carries
// no per-record route mask, is routed by.
func (r *Router) Route(s *Source) uint64 {
	var mask uint64
	for _, m := range r.RouteStreams(s) {
		mask |= m
	}
	return mask &^ RouteDrop
}

// RouteStream returns the mask of sinks that records of s on stream st go to; 0 means no
// route matched, RouteDrop that a route drops them.
func (r *Router) RouteStream(s *Source, st Stream) uint64 {
	if len(r.routes) == 0 {
		return 1<<len(r.sinks) - 1
	}
	var k *Kube
	input := ""
	if s != nil {
		k = s.Kube()
		input = s.Input
	}
	for i := range r.routes {
		if rt := &r.routes[i]; rt.matches(input, st, k) {
			return rt.mask
		}
	}
	return 0
}

// RouteStreams returns Route for every stream of s, indexed by Stream.
func (r *Router) RouteStreams(s *Source) [StreamApp + 1]uint64 {
	var out [StreamApp + 1]uint64
	for st := range out {
		out[st] = r.RouteStream(s, Stream(st))
	}
	return out
}

func (m *RouteMatch) patterns() []string {
	p := []string{m.Input, m.Namespace, m.Pod, m.Container, m.Workload}
	for _, v := range m.Labels.Globs {
		p = append(p, v)
	}
	return p
}

// NeedsWatch reports whether the route matches on what only the pod watch knows.
func (m *RouteMatch) NeedsWatch() bool { return !m.Labels.Empty() || m.Workload != "" }

func (rt *route) matches(input string, st Stream, k *Kube) bool {
	m := &rt.match
	if !glob(m.Input, input) {
		return false
	}
	if rt.stream != StreamUnknown && rt.stream != st {
		return false
	}
	if m.Namespace == "" && m.Pod == "" && m.Container == "" && m.Workload == "" && m.Labels.Empty() {
		return true
	}
	if k == nil {
		return false
	}
	if !glob(m.Namespace, k.Namespace) || !glob(m.Pod, k.Pod) || !glob(m.Container, k.Container) || !glob(m.Workload, k.Workload) {
		return false
	}
	for key, pat := range m.Labels.Globs {
		v, ok := k.Labels[key]
		if !ok || !glob(pat, v) {
			return false
		}
	}
	if rt.selector != nil && !rt.selector.Matches(labels.Set(k.Labels)) {
		return false
	}
	return true
}

func glob(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	ok, _ := path.Match(pattern, s)
	return ok
}
