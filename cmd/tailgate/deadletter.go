package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tailgate-dev/tailgate/collector"
)

const deadLetterUsage = `usage: tailgate deadletter list   --sink NAME [--config FILE | --data-dir DIR] [--since T] [--reason R] [--records]
       tailgate deadletter replay --sink NAME [--config FILE] [--data-dir DIR] [--since T] [--reason R] [--timeout D]
`

// cmdDeadLetter runs `tailgate deadletter list|replay`.
func cmdDeadLetter(ctx context.Context, args []string, std stdio, log *slog.Logger) error {
	if len(args) == 0 {
		return usagef(std, deadLetterUsage, "deadletter: a subcommand is required")
	}
	switch args[0] {
	case "list":
		return cmdDeadLetterList(ctx, args[1:], std)
	case "replay":
		return cmdDeadLetterReplay(ctx, args[1:], std, log)
	case "-h", "--help", "help":
		fmt.Fprint(std.out, deadLetterUsage)
		return errHelp
	}
	return usagef(std, deadLetterUsage, "deadletter: unknown subcommand %q", args[0])
}

// dlFlags are the flags list and replay share.
type dlFlags struct {
	sink, config, dataDir, since, reason string
}

func (f *dlFlags) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&f.sink, "sink", "", "the sink whose dead letters to use (required)")
	fs.StringVar(&f.config, "config", "", "the agent's config (default $TAILGATE_CONFIG, then "+defaultConfigPath+")")
	fs.StringVar(&f.dataDir, "data-dir", "", "the agent's data_dir (default: the config's)")
	fs.StringVar(&f.since, "since", "", "only dead letters from this time on: RFC 3339, or a duration ago such as 2h")
	fs.StringVar(&f.reason, "reason", "", "only dead letters with this reason (see list)")
}

// filter parses --since and --reason.
func (f *dlFlags) filter(now time.Time) (collector.DeadLetterFilter, error) {
	flt := collector.DeadLetterFilter{Reason: f.reason}
	if f.since == "" {
		return flt, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, f.since); err == nil {
		flt.Since = t
		return flt, nil
	}
	d, err := collector.ParseDuration(f.since)
	if err != nil {
		return flt, fmt.Errorf("--since %q: want an RFC 3339 time or a duration such as 2h", f.since)
	}
	flt.Since = now.Add(-d)
	return flt, nil
}

func cmdDeadLetterList(ctx context.Context, args []string, std stdio) error {
	fs := newFlags("deadletter list", "deadletter list --sink NAME [--config FILE | --data-dir DIR] [flags]")
	var f dlFlags
	f.register(fs)
	records := fs.Bool("records", false, "also print every record's envelope")
	if err := parseFlags(fs, args, std); err != nil {
		return err
	}
	if f.sink == "" {
		return flagUsagef(fs, std, "deadletter list: --sink NAME is required")
	}
	dataDir := f.dataDir
	if dataDir == "" {
		cfg, err := loadConfig(configPath(f.config), false)
		if err != nil {
			return err
		}
		dataDir = cfg.DataDir
	}
	flt, err := f.filter(time.Now())
	if err != nil {
		return flagUsagef(fs, std, "deadletter list: %v", err)
	}
	type total struct{ groups, records int }
	totals := map[string]*total{}
	var enc collector.Encoder
	var line []byte
	err = collector.ListDeadLetters(ctx, dataDir, f.sink, flt, func(g collector.DeadLetterGroup) error {
		t := totals[g.Reason]
		if t == nil {
			t = &total{}
			totals[g.Reason] = t
		}
		t.groups++
		t.records += len(g.Records)
		fmt.Fprintf(std.out, "%s  %-18s %6d records  %s\n", g.Time.UTC().Format(time.RFC3339), g.Reason, len(g.Records), oneLine(g.Error))
		if *records {
			for i := range g.Records {
				line = enc.AppendJSON(line[:0], &g.Records[i])
				line = append(line, '\n')
				if _, err := std.out.Write(line); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	reasons := make([]string, 0, len(totals))
	for r := range totals {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	if len(reasons) == 0 {
		fmt.Fprintf(std.out, "no dead letters for sink %s match\n", f.sink)
	}
	for _, r := range reasons {
		fmt.Fprintf(std.out, "total %s: %d records in %d groups\n", r, totals[r].records, totals[r].groups)
	}
	return nil
}

func cmdDeadLetterReplay(ctx context.Context, args []string, std stdio, log *slog.Logger) error {
	fs := newFlags("deadletter replay", "deadletter replay --sink NAME [--config FILE] [flags]")
	var f dlFlags
	f.register(fs)
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long; what is not delivered by then stays stored")
	if err := parseFlags(fs, args, std); err != nil {
		return err
	}
	if f.sink == "" {
		return flagUsagef(fs, std, "deadletter replay: --sink NAME is required")
	}
	flt, err := f.filter(time.Now())
	if err != nil {
		return flagUsagef(fs, std, "deadletter replay: %v", err)
	}
	cfg, err := loadConfig(configPath(f.config), false)
	if err != nil {
		return err
	}
	dataDir := cfg.DataDir
	if f.dataDir != "" {
		dataDir = f.dataDir
	}
	var sc *collector.SinkConfig
	for i := range cfg.Sinks {
		if cfg.Sinks[i].Name == f.sink {
			sc = &cfg.Sinks[i]
		}
	}
	if sc == nil {
		return fmt.Errorf("deadletter replay: the config has no sink named %q", f.sink)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	sink, err := newSink(ctx, *sc, log, nil)
	if err != nil {
		return err
	}
	progress := func(s collector.ReplayStats) {
		fmt.Fprintf(std.out, "replay %s: %d matched, %d delivered, %d failed again, %d pending, %d left as they were\n",
			f.sink, s.Matched, s.Delivered, s.Failed, s.Pending, s.Kept)
	}
	st, err := collector.ReplayDeadLetters(ctx, dataDir, sink, flt, log, progress)
	if cerr := sink.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
		err = cerr
	}
	progress(st)
	if err != nil {
		return fmt.Errorf("deadletter replay: %w (what was not delivered stays stored)", err)
	}
	if st.Failed > 0 {
		return fmt.Errorf("deadletter replay: %d records failed again and are stored again (see deadletter list)", st.Failed)
	}
	return nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// writeDeadLetterSummary adds the dead-letter stores under dataDir to buffer inspect's report:
// per sink, the records not replayed yet by reason with when they were dead-lettered, and the
// records the full store dropped (kept in the store's dropped.json, so they survive restarts).
func writeDeadLetterSummary(w io.Writer, dataDir string) error {
	sinks, err := collector.DeadLetterSinks(dataDir)
	if err != nil {
		return err
	}
	if len(sinks) == 0 {
		_, err := fmt.Fprintln(w, "\ndead letters: none")
		return err
	}
	fmt.Fprintln(w, "\ndead letters (records: tailgate deadletter list --sink NAME; send again: tailgate deadletter replay --sink NAME):")
	for _, s := range sinks {
		sum, err := collector.SummarizeDeadLetters(dataDir, s)
		if err != nil {
			fmt.Fprintf(w, "  %s: %v\n", s, err)
			continue
		}
		var stored, dropped int64
		for _, r := range sum.Reasons {
			stored += r.Records
			dropped += r.Dropped
		}
		fmt.Fprintf(w, "  %s: %d records not replayed, %d bytes on disk (%d not replayed), %d corrupt regions, %d dropped unreplayed when the store was full",
			s, stored, sum.Bytes, sum.Unreplayed, sum.Corrupt, dropped)
		if !sum.LastDrop.IsZero() {
			fmt.Fprintf(w, " (last %s)", sum.LastDrop.UTC().Format(time.RFC3339))
		}
		fmt.Fprintln(w)
		if len(sum.Reasons) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "    REASON\tRECORDS\tDROPPED\tOLDEST\tNEWEST")
		for _, r := range sum.Reasons {
			fmt.Fprintf(tw, "    %s\t%d\t%d\t%s\t%s\n", r.Reason, r.Records, r.Dropped, stampOrDash(r.Oldest), stampOrDash(r.Newest))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func stampOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
