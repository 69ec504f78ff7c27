package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
)

// stdio is where a command writes: results to out, diagnostics and logs to err.
type stdio struct{ out, err io.Writer }

var (
	// errHelp: the user asked for the usage, which was printed; exit 0.
	errHelp = errors.New("help requested")
	// errUsage: the command line cannot be run; the problem and the usage were printed; exit 2.
	errUsage = errors.New("usage error")
)

// newFlags returns a flag set for a command whose usage line is synopsis.
func newFlags(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: tailgate %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args the way Go's flag package treats a program's flags: -h/--help prints
// the usage to out and is a success, a bad flag or a stray argument prints the problem and the
// usage to err and is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string, std stdio) error {
	var b bytes.Buffer
	fs.SetOutput(&b)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		std.out.Write(b.Bytes())
		return errHelp
	case err != nil:
		std.err.Write(b.Bytes())
		return errUsage
	case fs.NArg() > 0:
		fmt.Fprintf(&b, "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		std.err.Write(b.Bytes())
		return errUsage
	}
	return nil
}

// usagef reports a command line that cannot be run (a missing required flag, an unknown
// subcommand): the message and the usage go to err, exit 2.
func usagef(std stdio, usage string, format string, args ...any) error {
	fmt.Fprintf(std.err, format+"\n%s", append(args, usage)...)
	return errUsage
}

// flagUsagef reports a problem with the flags fs parsed (a missing required flag): the message
// and fs's usage go to err, exit 2.
func flagUsagef(fs *flag.FlagSet, std stdio, format string, args ...any) error {
	fmt.Fprintf(std.err, format+"\n", args...)
	fs.SetOutput(std.err)
	fs.Usage()
	return errUsage
}
