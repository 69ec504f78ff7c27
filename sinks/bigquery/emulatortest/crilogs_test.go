//go:build !race

package emulatortest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// wantRecord is what the dedup view must hold for one message the test produced.
type wantRecord struct {
	source, stream, tag               string
	namespace, pod, podUID, container string
	partial                           bool // written as CRI P chunks and an F chunk
}

// criContainer is one container's log as the kubelet lays it out: the runtime appends to
// pods/<namespace>_<pod>_<uid>/<container>/0.log and containers/ holds a symlink to it named
// <pod>_<namespace>_<container>-<container id>.log. A plain container's log is a regular
// file at the containers/ name itself, so the agent has only that name to go by (no pod UID).
type criContainer struct {
	namespace, pod, uid, container string
	plain                          bool
	path                           string // the file the runtime appends to
	f                              *os.File
}

// criWriter appends CRI lines to its containers' logs from one goroutine (run): full lines,
// lines split into P and F chunks, some on stderr, and rotations by rename on request. Every
// record's message is unique ("tail-<seq> ...").
type criWriter struct {
	containers []*criContainer
	rng        *rand.Rand
	written    atomic.Int64 // records written so far
	rotated    []string     // paths the rotations renamed logs to
	want       map[string]wantRecord
}

// newCRIWriter lays out the containers under dir/pods and dir/containers.
func newCRIWriter(dir string) (*criWriter, error) {
	w := &criWriter{rng: rand.New(rand.NewPCG(11, 17)), want: map[string]wantRecord{}}
	if err := os.MkdirAll(filepath.Join(dir, "containers"), 0o755); err != nil {
		return nil, err
	}
	for i, c := range []criContainer{
		{namespace: "shop", pod: "cart-7d9f8b6c5d-x7k2p", uid: "0b6f3a52-1c1e-4c2a-9d51-7a1f0e2b9c01", container: "app"},
		{namespace: "shop", pod: "payments-0", uid: "5e2c9d10-8f3b-4e6a-a1c7-2b9d4f6e8a02", container: "server"},
		{namespace: "kube-system", pod: "coredns-5d78c9869d-abcde", uid: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c03", container: "coredns"},
		{namespace: "batch", pod: "report-29145600-zq4lm", container: "report", plain: true},
	} {
		link := filepath.Join(dir, "containers", fmt.Sprintf("%s_%s_%s-%064x.log", c.pod, c.namespace, c.container, i+1))
		if c.plain {
			c.path = link
		} else {
			podDir := filepath.Join(dir, "pods", c.namespace+"_"+c.pod+"_"+c.uid, c.container)
			if err := os.MkdirAll(podDir, 0o755); err != nil {
				return nil, err
			}
			c.path = filepath.Join(podDir, "0.log")
			if err := os.Symlink(c.path, link); err != nil {
				return nil, err
			}
		}
		if err := c.open(); err != nil {
			return nil, err
		}
		w.containers = append(w.containers, &c)
	}
	return w, nil
}

func (c *criContainer) open() error {
	f, err := os.OpenFile(c.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", c.path, err)
	}
	c.f = f
	return nil
}

// run writes a record every few milliseconds until stop is closed, and rotates a log each
// time rotate delivers. It returns the first error, after closing the files.
func (w *criWriter) run(stop <-chan struct{}, rotate <-chan struct{}) error {
	defer func() {
		for _, c := range w.containers {
			c.f.Close()
		}
	}()
	tick := time.NewTicker(4 * time.Millisecond) // pacing, about 250 records a second
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return nil
		case <-rotate:
			if err := w.rotate(); err != nil {
				return err
			}
		case <-tick.C:
			if err := w.write(); err != nil {
				return err
			}
		}
	}
}

// write appends one record: every 6th as three P chunks and an F chunk, every 5th (of
// the rest) on stderr.
func (w *criWriter) write() error {
	seq := int(w.written.Load())
	c := w.containers[w.rng.IntN(len(w.containers))]
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	rec := wantRecord{source: "pods", stream: "stdout", namespace: c.namespace, pod: c.pod,
		podUID: c.uid, container: c.container}
	var b strings.Builder
	var msg string
	switch {
	case seq%6 == 0:
		rec.partial = true
		msg = fmt.Sprintf("tail-%06d %s partial head|%s|%s|tail", seq, c.container,
			strings.Repeat("a", 50+w.rng.IntN(300)), strings.Repeat("b", 50+w.rng.IntN(300)))
		n := len(msg) / 4
		for _, chunk := range []string{msg[:n], msg[n : 2*n], msg[2*n : 3*n]} {
			fmt.Fprintf(&b, "%s stdout P %s\n", ts, chunk)
		}
		fmt.Fprintf(&b, "%s stdout F %s\n", ts, msg[3*n:])
	default:
		if seq%5 == 0 {
			rec.stream = "stderr"
		}
		msg = fmt.Sprintf("tail-%06d %s %s pad=%s", seq, c.container, rec.stream, strings.Repeat("x", w.rng.IntN(120)))
		fmt.Fprintf(&b, "%s %s F %s\n", ts, rec.stream, msg)
	}
	if _, err := c.f.WriteString(b.String()); err != nil {
		return fmt.Errorf("write %s: %w", c.path, err)
	}
	w.want[msg] = rec
	w.written.Add(1)
	return nil
}

// rotate renames the first kubelet-style log to 0.log.<time>, as the kubelet does, and
// opens a new 0.log under the same symlink.
func (w *criWriter) rotate() error {
	c := w.containers[len(w.rotated)%len(w.containers)]
	if c.plain {
		c = w.containers[0]
	}
	c.f.Close()
	to := c.path + "." + time.Now().UTC().Format("20060102-150405.000000000")
	if err := os.Rename(c.path, to); err != nil {
		return fmt.Errorf("rotate %s: %w", c.path, err)
	}
	w.rotated = append(w.rotated, to)
	return c.open()
}
