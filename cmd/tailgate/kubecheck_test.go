package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckKubernetesFails: check exits 1, naming the config and what the API said, when
// kubernetes.enabled and the API cannot be reached or refuses to list this node's pods.
func TestCheckKubernetesFails(t *testing.T) {
	forbidden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",`+
			`"message":"pods is forbidden: User \"system:serviceaccount:logging:tailgate\" cannot list resource \"pods\" in API group \"\" at the cluster scope",`+
			`"reason":"Forbidden","details":{"kind":"pods"},"code":403}`)
	}))
	defer forbidden.Close()
	unauthorized := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`)
	}))
	defer unauthorized.Close()

	dir := t.TempDir()
	f := func(name, server string, want ...string) {
		t.Helper()
		kubeconfig := filepath.Join(dir, name+".kubeconfig")
		os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+server+`"}}]
users: [{name: u, user: {token: t0ken}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600)
		cfg := filepath.Join(dir, name+".yaml")
		os.WriteFile(cfg, []byte("node_name: node-a\ndata_dir: "+dir+"/data\nkubernetes: {enabled: true, kubeconfig: "+kubeconfig+"}\n"+
			"inputs: [{name: p, type: tail, paths: [\""+dir+"/*.log\"]}]\nsinks: [{name: s, type: stdout}]\n"), 0o644)
		code, out, errOut := runCLI(t, "check", "--config", cfg)
		if code != 1 || strings.Contains(out, "ok") {
			t.Errorf("%s: code %d, stdout %q, stderr %q; want 1 and no ok", name, code, out, errOut)
		}
		for _, w := range append([]string{cfg + ": kubernetes: list pods on node node-a"}, want...) {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: stderr %q lacks %q", name, errOut, w)
			}
		}
	}
	f("unreachable", "https://127.0.0.1:1", "connection refused")
	f("forbidden", forbidden.URL, `cannot list resource "pods"`, "needs get, list and watch on pods")
	f("unauthorized", unauthorized.URL, "Unauthorized")
}
