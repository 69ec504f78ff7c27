package collector

import (
	"fmt"
	"path"
)

// Router picks the sinks of a source. Routes match on source-level facts only (input name and
// Kubernetes metadata), so a decision is made once per source version, never per record.
type Router struct {
	routes []route
	sinks  []string
}

type route struct {
	match RouteMatch
	mask  uint64
}

// maxSinks is the number of sinks a route mask can address.
const maxSinks = 64

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
		for _, pat := range rc.Match.patterns() {
			if _, err := path.Match(pat, ""); err != nil {
				return nil, fmt.Errorf("routes[%d]: bad pattern %q: %w", i, pat, err)
			}
		}
		r.routes = append(r.routes, route{match: rc.Match, mask: mask})
	}
	return r, nil
}

// Sinks returns the sink names in mask order.
func (r *Router) Sinks() []string { return r.sinks }

// Route returns the mask of sinks that records of s go to; 0 means none.
func (r *Router) Route(s *Source) uint64 {
	if len(r.routes) == 0 {
		return 1<<len(r.sinks) - 1
	}
	var k *Kube
	input := ""
	if s != nil {
		k = s.Kube()
		input = s.Input
	}
	for _, rt := range r.routes {
		if rt.match.matches(input, k) {
			return rt.mask
		}
	}
	return 0
}

func (m *RouteMatch) patterns() []string {
	p := []string{m.Input, m.Namespace, m.Pod, m.Container}
	for _, v := range m.Labels {
		p = append(p, v)
	}
	return p
}

func (m *RouteMatch) matches(input string, k *Kube) bool {
	if !glob(m.Input, input) {
		return false
	}
	if m.Namespace == "" && m.Pod == "" && m.Container == "" && len(m.Labels) == 0 {
		return true
	}
	if k == nil {
		return false
	}
	if !glob(m.Namespace, k.Namespace) || !glob(m.Pod, k.Pod) || !glob(m.Container, k.Container) {
		return false
	}
	for key, pat := range m.Labels {
		v, ok := k.Labels[key]
		if !ok || !glob(pat, v) {
			return false
		}
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
