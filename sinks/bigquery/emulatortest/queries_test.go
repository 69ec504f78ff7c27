//go:build !race

package emulatortest

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// queryBlocks splits queries.sql at its "-- N." headers: block N is the text of question N
// (one statement, or a DECLARE and a statement, which run as one script).
func queryBlocks(t *testing.T) map[int]string {
	t.Helper()
	sql := deploySQL(t, "queries.sql")
	heads := regexp.MustCompile(`(?m)^-- (\d+)\. `).FindAllStringSubmatchIndex(sql, -1)
	out := map[int]string{}
	for i, h := range heads {
		end := len(sql)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		var n int
		fmt.Sscan(sql[h[2]:h[3]], &n)
		out[n] = sql[h[0]:end]
	}
	if len(out) != 4 {
		t.Fatalf("queries.sql: %d numbered questions, want 4", len(out))
	}
	return out
}

// replaceOnce substitutes old in sql and fails when it isn't there: the test must notice
// when queries.sql changes under it.
func replaceOnce(t *testing.T, sql, old, new string) string {
	t.Helper()
	if strings.Count(sql, old) != 1 {
		t.Fatalf("queries.sql: want %q once in\n%s", old, sql)
	}
	return strings.Replace(sql, old, new, 1)
}

type volume struct{ lines, bytes int64 }

func checkQueries(t *testing.T, q *querier, f *fixture, labelsDoubleEncoded bool) {
	blocks := queryBlocks(t)

	t.Run("1 errors per namespace", func(t *testing.T) {
		want := map[string]int64{}
		for _, r := range f.records { // over the dedup view: each record once
			if r.isError() {
				want[r.pod.src.Kube().Namespace]++
			}
		}
		rows := q.rows(t, blocks[1])
		got := map[string]int64{}
		var order []int64
		for _, row := range rows {
			got[row["namespace"].(string)] = row["errors"].(int64)
			order = append(order, row["errors"].(int64))
		}
		if !maps.Equal(got, want) {
			t.Errorf("errors per namespace %v, want %v", got, want)
		}
		if !slices.IsSortedFunc(order, func(a, b int64) int { return int(b - a) }) {
			t.Errorf("not ordered by errors descending: %v", order)
		}
	})

	t.Run("2 top talking pods", func(t *testing.T) {
		want := map[string]volume{}
		for _, r := range f.published { // over the table: duplicates count
			k := r.pod.src.Kube()
			v := want[k.Namespace+"/"+k.Pod]
			v.lines++
			v.bytes += int64(len(r.message))
			want[k.Namespace+"/"+k.Pod] = v
		}
		got := map[string]volume{}
		for _, row := range q.rows(t, blocks[2]) {
			got[row["namespace"].(string)+"/"+row["pod"].(string)] = volume{row["lines"].(int64), row["bytes"].(int64)}
		}
		if !maps.Equal(got, want) {
			t.Errorf("top pods %v, want %v", got, want)
		}
	})

	t.Run("3 one pod around a moment", func(t *testing.T) {
		at := f.records[152] // a record of the cart pod, mid-fixture
		k := at.pod.src.Kube()
		atText := at.time.Truncate(time.Microsecond).Format("2006-01-02 15:04:05.999999") + "+00"
		sql := replaceOnce(t, blocks[3], "TIMESTAMP '2026-11-23 03:00:00+00'", "TIMESTAMP '"+atText+"'")
		sql = replaceOnce(t, sql, "namespace = 'shop'", "namespace = '"+k.Namespace+"'")
		sql = replaceOnce(t, sql, "pod = 'cart-7d9f'", "pod = '"+k.Pod+"'")
		sql = runScriptAsSelect(t, q, sql)
		var want []string
		for _, r := range f.records { // fixture order is time order
			d := r.time.Sub(at.time)
			if r.pod == at.pod && d >= -5*time.Minute && d <= 5*time.Minute {
				want = append(want, r.message)
			}
		}
		var got []string
		for _, row := range q.rows(t, sql) {
			got = append(got, row["message"].(string))
			if row["container"] != k.Container {
				t.Errorf("container %v, want %s", row["container"], k.Container)
			}
		}
		if len(want) < 20 || !slices.Equal(got, want) {
			t.Errorf("pod %s around %s: got %d lines\n%q\nwant %d\n%q", k.Pod, atText, len(got), got, len(want), want)
		}
	})

	t.Run("4 volume per workload per day", func(t *testing.T) {
		want := map[string]volume{}
		for _, r := range f.published {
			w := r.pod.byLabel
			if labelsDoubleEncoded && len(r.pod.src.Kube().Labels) > 0 {
				w = r.pod.byName
			}
			key := r.time.UTC().Format(time.DateOnly) + " " + r.pod.src.Kube().Namespace + " " + w
			v := want[key]
			v.lines++
			v.bytes += int64(len(r.message))
			want[key] = v
		}
		got := map[string]volume{}
		for _, row := range q.rows(t, blocks[4]) {
			key := fmt.Sprint(row["day"]) + " " + row["namespace"].(string) + " " + row["workload"].(string)
			got[key] = volume{row["lines"].(int64), row["bytes"].(int64)}
		}
		if !maps.Equal(got, want) {
			t.Errorf("volume per workload %v, want %v", got, want)
		}
	})
}

// declareTimestamp is queries.sql's way of naming the moment question 3 is about.
var declareTimestamp = regexp.MustCompile(`(?m)^DECLARE (\w+) TIMESTAMP DEFAULT (TIMESTAMP '[^']*');\n`)

// runScriptAsSelect returns the script's SELECT with its one DECLAREd variable inlined: the
// emulator runs no scripts ("Statement not supported: VariableDeclaration"). So that this
// hides nothing BigQuery would refuse, the script as written is sent first and must get
// through the parser: the only error accepted is the emulator's missing support.
func runScriptAsSelect(t *testing.T, q *querier, script string) string {
	t.Helper()
	m := declareTimestamp.FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("queries.sql: no DECLARE ... TIMESTAMP DEFAULT TIMESTAMP '...'; in\n%s", script)
	}
	if _, err := q.bq.Query(script).Read(q.ctx); err != nil &&
		!strings.Contains(err.Error(), "Statement not supported: VariableDeclaration") {
		t.Errorf("queries.sql question 3 as written is refused: %v", err)
	}
	name, value := m[1], m[2]
	sel := strings.Replace(script, m[0], "", 1)
	if strings.Count(sel, "("+name+",") != 2 {
		t.Fatalf("queries.sql: want the variable %s used twice as (%s, ...) in\n%s", name, name, sel)
	}
	return strings.ReplaceAll(sel, "("+name+",", "("+value+",")
}
