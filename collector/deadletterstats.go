package collector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tailgate-dev/tailgate/buffer"
)

// droppedFile, in a sink's dead-letter store, counts the records the full store deleted before
// they were replayed, by reason: the metric restarts at zero with the agent, an operator
// reading the store later (buffer inspect) must still see what was lost.
const droppedFile = "dropped.json"

type droppedCounts struct {
	Records map[string]int64 `json:"records"` // by the reason they were dead-lettered for
	Last    time.Time        `json:"last"`    // when the store last dropped records
}

func readDropped(dir string) (droppedCounts, error) {
	var c droppedCounts
	data, err := os.ReadFile(filepath.Join(dir, droppedFile))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		return c, fmt.Errorf("dead-letter store %s: %s: %w", dir, droppedFile, err)
	}
	return c, nil
}

// addDropped adds counts to the store's dropped.json, replacing the file atomically. Drops
// are rare (a store full of dead letters): a write per Append that dropped is cheap enough.
func addDropped(dir string, counts map[string]int64, now time.Time) error {
	c, err := readDropped(dir)
	if err != nil {
		c = droppedCounts{} // unreadable: start again rather than stop counting
	}
	if c.Records == nil {
		c.Records = map[string]int64{}
	}
	for r, n := range counts {
		c.Records[r] += n
	}
	c.Last = now.UTC()
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := buffer.ReplaceFile(dir, droppedFile, append(data, '\n')); err != nil {
		return fmt.Errorf("write %s in %s: %w", droppedFile, dir, err)
	}
	return nil
}

// DeadLetterSummary is what a sink's dead-letter store holds and lost, read from disk.
type DeadLetterSummary struct {
	Sink    string
	Reasons []DeadLetterReason // by reason name; reasons with only dropped records included
	// Bytes is the size of the store's segments; Unreplayed the part after the replay cursor.
	Bytes, Unreplayed int64
	Corrupt           int       // damaged regions found in the segments
	LastDrop          time.Time // when the full store last dropped records; zero if never
}

// DeadLetterReason counts one reason's dead letters in a store.
type DeadLetterReason struct {
	Reason         string
	Records        int64     // stored and not replayed yet
	Groups         int64     // writes (batches) they came in
	Oldest, Newest time.Time // when the first and last of them were dead-lettered
	Dropped        int64     // deleted unreplayed because the store was full (dropped.json)
}

// SummarizeDeadLetters reads sink's dead-letter store under dataDir without taking its lock
// (it may run while the agent writes; then the newest dead letters may be missing): the
// records not yet replayed by reason, with the times they were dead-lettered, and the records
// the full store dropped.
func SummarizeDeadLetters(dataDir, sink string) (DeadLetterSummary, error) {
	s := DeadLetterSummary{Sink: sink}
	dir := deadLetterDir(dataDir, sink)
	rep, err := buffer.Inspect(dir)
	if err != nil {
		return s, err
	}
	s.Bytes, s.Unreplayed, s.Corrupt = rep.Bytes, rep.Bytes, len(rep.Corruption)
	var from buffer.Position
	for _, c := range rep.Cursors {
		if c.Name == deadLetterReader && c.Err == "" && !c.Parked {
			from, s.Unreplayed = c.Pos, c.LagBytes
		}
	}
	by := map[string]*DeadLetterReason{}
	reason := func(r string) *DeadLetterReason {
		if by[r] == nil {
			by[r] = &DeadLetterReason{Reason: r}
		}
		return by[r]
	}
	var dec frameDecoder
	var f decodedFrame
	err = buffer.ScanFrames(dir, from, func(fr buffer.Frame) error {
		if err := dec.decode(fr.Data, &f); err != nil {
			r := reason("unknown")
			r.Records += int64(fr.Count)
			r.Groups++
			return nil
		}
		g := groupOf(f.State)
		r := reason(g.Reason)
		r.Records += int64(len(f.Records))
		r.Groups++
		if r.Oldest.IsZero() || g.Time.Before(r.Oldest) {
			r.Oldest = g.Time
		}
		if g.Time.After(r.Newest) {
			r.Newest = g.Time
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("dead letters of sink %s: %w", sink, err)
	}
	dropped, err := readDropped(dir)
	if err != nil {
		return s, err
	}
	for r, n := range dropped.Records {
		reason(r).Dropped += n
	}
	s.LastDrop = dropped.Last
	for _, r := range by {
		s.Reasons = append(s.Reasons, *r)
	}
	sort.Slice(s.Reasons, func(i, j int) bool { return s.Reasons[i].Reason < s.Reasons[j].Reason })
	return s, nil
}

// StoreDeadLetters adds recs to sink's dead-letter store under dataDir as one group, rejected
// at `at` for cause (ErrorReason(cause) is its reason), as the agent stores them; for tools
// and tests that prepare a store. It waits while an agent or a replay holds the store.
func StoreDeadLetters(ctx context.Context, dataDir, sink string, recs []Record, cause error, at time.Time) error {
	d := newDeadLetter(dataDir, sink, slog.New(slog.DiscardHandler), NewMetrics(nil))
	ptrs := make([]*Record, len(recs))
	for i := range recs {
		ptrs[i] = &recs[i]
	}
	err := d.writeState(ctx, ptrs, deadLetterState(cause, at))
	if cerr := d.close(); err == nil {
		err = cerr
	}
	return err
}
