// Package multiline joins the logical lines of one log stream into records: a stack trace
// written one frame per line becomes one record. It owns the detectors (built-in exception
// state machines for Java, Node, .NET, Python, Go, Ruby, PHP and Dart, and custom start /
// continue regular expressions) and the Joiner that holds the record being assembled.
//
// Some lines only the next one can place: a blank line after a trace may end it, or a
// chained Python traceback ("During handling of the above exception, ...") or Node's
// "Node.js v20.11.0" may follow it. Such lines are held tentatively; when the record ends
// before them they come out as records of their own (Done.Released), so a trace comes out
// the same whether the line after it is a log line, silence until flush_after, or the end.
//
// It knows nothing about files or positions: the caller (the tail input) feeds logical lines
// (after runtime partials are joined), keeps the first line's identity, and saves the
// machine state the Joiner reports with its positions, so a restart re-reads a held record
// and joins it again the same way.
//
// What it must never do: run a regular expression on a line that a byte or prefix test
// already rules out, allocate per line in steady state, or hold more than max_lines /
// max_bytes.
package multiline
