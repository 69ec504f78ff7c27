package buffer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what Inspect found in a data dir.
type Report struct {
	Dir        string
	Bytes      int64
	Segments   []SegmentReport
	Cursors    []CursorReport
	Corruption []Corruption
}

// SegmentReport describes one segment file.
type SegmentReport struct {
	Name       string
	ID         uint64
	Size       int64
	Frames     int // valid frames, checkpoints included
	DataFrames int
	Records    int64
	First      time.Time // append times of the first and last data frames
	Last       time.Time
	Checkpoint bool // starts with a valid checkpoint frame
}

// CursorReport describes one reader's cursor file.
type CursorReport struct {
	Name     string
	Pos      Position
	LagBytes int64
	Err      string // why the cursor is unusable, if it is
	// Parked: the sink is no longer configured; the cursor holds no segment and is resumed
	// if the sink comes back (ParkReader).
	Parked bool
}

// Inspect reads a data dir without changing it; it works while no agent runs (and, with
// figures that may be a moment old, while one does).
func Inspect(dir string) (Report, error) {
	rep := Report{Dir: dir}
	segDir := filepath.Join(dir, "segments")
	files, err := listSegments(segDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("inspect: %w", err)
	}
	for _, sf := range files {
		sr, corrupt, err := inspectSegment(segDir, sf)
		if err != nil {
			return rep, fmt.Errorf("inspect: %w", err)
		}
		rep.Segments = append(rep.Segments, sr)
		rep.Corruption = append(rep.Corruption, corrupt...)
		rep.Bytes += sr.Size
	}
	for _, d := range []struct {
		dir    string
		parked bool
	}{{filepath.Join(dir, "cursors"), false}, {filepath.Join(dir, "cursors", parkedDir), true}} {
		if err := inspectCursors(&rep, d.dir, d.parked); err != nil {
			return rep, err
		}
	}
	sort.Slice(rep.Cursors, func(i, j int) bool { return rep.Cursors[i].Name < rep.Cursors[j].Name })
	return rep, nil
}

// ScanFrames calls fn with every valid data frame of the data dir at or after from, oldest
// first; Frame.Data is valid only until fn returns. Like Inspect it takes no lock and changes
// nothing: while an agent writes, the newest frames may be missing. An error from fn stops the
// scan and is returned.
func ScanFrames(dir string, from Position, fn func(Frame) error) error {
	segDir := filepath.Join(dir, "segments")
	files, err := listSegments(segDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("scan frames: %w", err)
	}
	var payload []byte
	for _, sf := range files {
		if sf.id < from.Segment {
			continue
		}
		start := int64(segmentHeaderSize)
		if sf.id == from.Segment {
			start = max(start, from.Offset)
		}
		f, err := os.Open(filepath.Join(segDir, sf.name))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted meanwhile: every reader had passed it
		}
		if err != nil {
			return fmt.Errorf("scan frames: %w", err)
		}
		var fnErr error
		err = eachFrame(f, sf.name, start, sf.size, &payload, func(h header, off int64, p []byte) error {
			if h.kind != KindData {
				return nil
			}
			end := off + frameHeaderSize + int64(len(p))
			fnErr = fn(Frame{Pos: Position{sf.id, off}, End: Position{sf.id, end}, Count: int(h.count),
				Time: time.Unix(0, h.time), Data: p})
			return fnErr
		})
		f.Close()
		if err != nil {
			if err == fnErr {
				return err
			}
			return fmt.Errorf("scan frames: %w", err)
		}
	}
	return nil
}

// inspectCursors adds the cursor files of curDir to rep.
func inspectCursors(rep *Report, curDir string, parked bool) error {
	entries, err := os.ReadDir(curDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("inspect: list cursors: %w", err)
	}
	for _, e := range entries {
		name, ok := readerName(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		cr := CursorReport{Name: name, Parked: parked}
		data, err := os.ReadFile(filepath.Join(curDir, e.Name()))
		if err == nil {
			cr.Pos, err = decodeCursor(data)
		}
		if err != nil {
			cr.Err = err.Error()
		}
		for _, s := range rep.Segments {
			switch {
			case cr.Err != "" || s.ID > cr.Pos.Segment:
				cr.LagBytes += s.Size
			case s.ID == cr.Pos.Segment:
				cr.LagBytes += max(s.Size-cr.Pos.Offset, 0)
			}
		}
		rep.Cursors = append(rep.Cursors, cr)
	}
	return nil
}

func inspectSegment(dir string, sf segmentFile) (SegmentReport, []Corruption, error) {
	f, err := os.Open(filepath.Join(dir, sf.name))
	if err != nil {
		return SegmentReport{}, nil, fmt.Errorf("open segment %s: %w", sf.name, err)
	}
	defer f.Close()
	sc, err := scanSegment(f, sf.name, sf.id, sf.size)
	if err != nil {
		return SegmentReport{}, nil, err
	}
	return SegmentReport{
		Name: sf.name, ID: sf.id, Size: sf.size, Frames: sc.frames, DataFrames: sc.dataFrames,
		Records: sc.records, First: sc.first, Last: sc.last, Checkpoint: sc.checkpoint,
	}, sc.corrupt, nil
}

// WriteText writes the report as tables for `tailgate buffer inspect`.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "data dir %s: %d segments, %s\n\n", r.Dir, len(r.Segments), humanBytes(r.Bytes))
	fmt.Fprintln(tw, "SEGMENT\tSIZE\tFRAMES\tRECORDS\tCHECKPOINT\tFIRST\tLAST")
	for _, s := range r.Segments {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\n", s.Name, humanBytes(s.Size), s.DataFrames, s.Records,
			yesNo(s.Checkpoint), stamp(s.First), stamp(s.Last))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CURSOR\tSEGMENT\tOFFSET\tLAG\tSTATUS")
	for _, c := range r.Cursors {
		status := "ok"
		if c.Err != "" {
			status = c.Err + " (restarts at the oldest frame)"
		}
		if c.Parked {
			status = "parked: sink not configured, holds no segment" + strings.TrimPrefix(status, "ok")
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", c.Name, c.Pos.Segment, c.Pos.Offset, humanBytes(c.LagBytes), status)
	}
	fmt.Fprintln(tw)
	if len(r.Corruption) == 0 {
		fmt.Fprintln(tw, "corruption: none")
		return tw.Flush()
	}
	fmt.Fprintln(tw, "CORRUPTION\tOFFSET\tBYTES\tREASON\tACTION")
	for _, c := range r.Corruption {
		action := "skipped"
		if c.Tail {
			action = "truncated at open"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", c.Segment, c.Offset, c.Length, c.Reason, action)
	}
	return tw.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func humanBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return strings.TrimSuffix(fmt.Sprintf("%.1f", f), ".0") + " " + units[i]
}
