// Package jsonscan is tailgate's one JSON reader: the strict, allocation-free scanning
// primitives (RFC 8259, as encoding/json accepts it) that the per-record hot paths build on —
// the tail's docker json-file lines and its "is this message a JSON object" check, the forward
// input's JSON frames, the BigQuery loader's envelope scanner and the Cloud Logging sink's JSON
// to protobuf walk.
//
// It works in place on the caller's bytes with an index: a scan takes the text and the offset
// where a token starts and returns the offset past it, so a caller keeps its own cursor and
// its own error reporting. Nothing here builds values, allocates, or keeps state between calls
// (the Framer excepted, which is resumable by design). Decoded strings are appended into a
// buffer the caller owns.
//
// On failure a scan returns the offset of the first byte that makes the text invalid (len(b)
// when the text ends too early): what encoding/json's syntax errors point at.
//
// What it must never do: accept text encoding/json rejects in its strict scans (String,
// Number, Literal, Skip, Member, Element, Valid, IsObject), or decode a string differently from
// encoding/json (Unquote). The one lenient decoder, UnquoteRaw, is for callers that deliver
// what a peer sent rather than drop it, and says exactly where it differs. FuzzScan checks both
// against encoding/json.
package jsonscan
