package tail

import "github.com/tailgate-dev/tailgate/internal/jsonscan"

// maxJSONDepth bounds the nesting of a message taken as JSON fields, and of the docker fields
// the parser skips: deeper text stays a plain message.
const maxJSONDepth = 64

// isJSONObject reports whether b (with optional surrounding whitespace) is one valid JSON
// object: the check a message passes before it is handed on as Record.Fields, which the
// envelope writes verbatim.
func isJSONObject(b []byte) bool { return jsonscan.IsObject(b, maxJSONDepth) }
