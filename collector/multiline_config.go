package collector

import (
	"time"

	"github.com/tailgate-dev/tailgate/collector/multiline"
)

// Rules converts the YAML keys to the multiline stage's config.
func (m MultilineConfig) Rules() multiline.Config {
	return multiline.Config{Detect: m.Detect, Start: m.Start, Continue: m.Continue, MaxLines: m.MaxLines,
		MaxBytes: int(m.MaxBytes), FlushAfter: time.Duration(m.FlushAfter)}
}
