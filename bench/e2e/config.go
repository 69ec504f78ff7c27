package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
)

// writeConfig writes the tailgate.yaml of one run (the DESIGN.md config contract): the tree's
// containers/*.log tailed from head, a group-committed buffer, and one file sink per output
// (outs[0] is sink "local"). With several outputs, routes split the tree's namespaces among
// them, so each sink gets a share of the records (the fan-out case: a reader per sink).
func writeConfig(path, dataDir, treeDir string, outs []string, listen string) error {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) } // JSON strings are YAML
	var b strings.Builder
	fmt.Fprintf(&b, "node_name: bench\n")
	fmt.Fprintf(&b, "data_dir: %s\n", q(dataDir))
	fmt.Fprintf(&b, "shutdown_timeout: 10s\n")
	fmt.Fprintf(&b, "metrics:\n  listen: %s\n", q(listen))
	fmt.Fprintf(&b, "buffer:\n  sync: 200ms\n")
	fmt.Fprintf(&b, "kubernetes:\n  enabled: false\n")
	fmt.Fprintf(&b, "inputs:\n  - name: pods\n    type: tail\n    paths: [%s]\n    format: auto\n    read_from: head\n",
		q(treeDir+"/containers/*.log"))
	names := []string{"local", "second", "third"}
	if len(outs) > 1 {
		// bench/gen's namespaces, dealt round-robin to the sinks; the last route takes the rest.
		fmt.Fprintf(&b, "routes:\n")
		for i, ns := range []string{"default", "shop", "payments", "search", "kube-system", "monitoring", "ingress-nginx"} {
			fmt.Fprintf(&b, "  - {match: {namespace: %s}, sinks: [%s]}\n", q(ns), names[i%len(outs)])
		}
		fmt.Fprintf(&b, "  - {match: {namespace: \"*\"}, sinks: [%s]}\n", names[len(outs)-1])
	}
	fmt.Fprintf(&b, "sinks:\n")
	for i, out := range outs {
		fmt.Fprintf(&b, "  - name: %s\n    type: file\n    path: %s\n", names[i], q(out))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// freeAddr returns a 127.0.0.1 address with a port free at the time of the call.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
