package tail

import "github.com/tailgate-dev/tailgate/collector"

// chunk is one parsed physical line: a whole message, or one piece of it when Partial is set.
// Message is borrowed from the line or from the parser's scratch buffer.
type chunk struct {
	Time    int64 // Unix nanoseconds; 0 when the line carries none
	Stream  collector.Stream
	Partial bool
	Message []byte
}

// format is a log file's line format.
type format uint8

const (
	formatUnknown format = iota
	formatCRI
	formatDocker
)

// detectFormat guesses a file's format from its first line: docker json-file lines are JSON
// objects, CRI lines start with a timestamp.
func detectFormat(line []byte) format {
	for _, c := range line {
		switch c {
		case ' ', '\t', '\r':
			continue
		case '{':
			return formatDocker
		}
		return formatCRI
	}
	return formatUnknown
}
