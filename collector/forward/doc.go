// Package forward is tailgate's Fluentd forward-protocol (v1) input: it listens on TCP, a unix
// socket or TLS, optionally runs the shared-key handshake, decodes Message, Forward,
// PackedForward and CompressedPackedForward frames (and the JSON frames fluent-logger-golang
// sends with MarshalAsJSON), and emits their events as collector records.
//
// Contracts it keeps:
//   - A chunk is acknowledged ({"ack": chunk}) only after every batch emitted from it is durable.
//   - A bad frame (garbage, malformed or truncated msgpack, wrong types, over max_chunk_bytes)
//     closes only its own connection and is counted in tailgate_input_errors_total; a declared
//     length over the limit is refused before anything is allocated for it.
//   - While the buffer is full, Emit blocks and the connection is not read: the client sees TCP
//     backpressure. Nothing per connection grows without bound.
//
// The decoder works on byte slices of a reused per-connection read buffer with msgp's low-level
// Read*Bytes functions and converts each record map straight to JSON; it allocates nothing per
// event in steady state.
package forward
