// Package forward is tailgate's Fluentd forward-protocol (v1) input: it listens on TCP, a unix
// socket or TLS, optionally runs the shared-key handshake, decodes Message, Forward,
// PackedForward and CompressedPackedForward frames (and the JSON frames fluent-logger-golang
// sends with MarshalAsJSON), and emits their events as collector records.
//
// Contracts it keeps:
//   - A chunk is acknowledged ({"ack": chunk}) only after every batch emitted from it is durable.
//     Waiting for that starts a buffer commit at once (buffer.WaitDurable), so an ack costs one
//     shared fsync, not the sync interval.
//   - A bad frame (garbage, malformed or truncated msgpack, wrong types, over max_chunk_bytes)
//     closes only its own connection and is counted in tailgate_input_errors_total; a declared
//     length over the limit is refused before anything is allocated for it.
//   - While the buffer is full, Emit blocks and the connection is not read: the client sees TCP
//     backpressure.
//
// What a peer can hold, and for how long (every close is counted in
// tailgate_forward_connections_closed_total{input,reason}, repeated warnings are rate-limited):
//   - Time. The TLS handshake and the shared-key handshake (HELO, PING, PONG) must be done
//     handshake_timeout (10s) after the accept. A frame must be whole frame_timeout (30s) after
//     its first byte arrived, however it trickles in. Between frames a connection may stay
//     silent idle_timeout, off by default (0): an idle close loses the next record of a client
//     without acks, and idle connections are bounded by the connection limits below; TCP
//     keep-alive (15s probes) ends the connections of peers that vanished. Whitespace between
//     JSON frames does not count as a frame.
//     An ack must be taken by the client within frame_timeout. Only Emit, blocked by a full
//     buffer, has no deadline: that wait is ours, not the peer's.
//   - Connections. At most max_connections_per_peer (256) per remote IP and max_connections
//     (1024) in all. At either limit a new connection is admitted by closing an idle one
//     (between frames, no ack pending): first one that never completed a frame, then one of
//     the peer holding the most connections, then the one idle longest. A connection reading
//     a frame or awaiting an ack is never evicted; when none is idle the new one is refused.
//     Unix-socket peers have no address: the socket's mode and group admit them, and only
//     max_connections counts them.
//   - Memory. A connection starts with a 4 KiB read buffer and grows it, doubling, up to its
//     frame's size (at most max_chunk_bytes, checked against every declared length before the
//     bytes arrive). Up to 256 KiB is kept between frames; anything larger comes from the
//     input's max_buffered_bytes budget (256 MiB), shared by all connections, and is returned
//     when the frame is done: a connection that would exceed it is closed (memory_limit) and
//     its client resends. Compressed chunks inflate through a 256 KiB window that grows only
//     for one larger entry (from the same budget), so a gzip bomb costs CPU, not memory; a
//     chunk inflating past 4 x max_chunk_bytes is refused. The option map sizes nothing: size
//     and compressed are hints (the gzip magic decides), and a chunk id (kept until its ack
//     and echoed in it) is at most 256 bytes. Per connection: at most 64 acks queued, a
//     decoded batch of at most 4096 records or 4 MiB before it is emitted, nesting at most 100
//     deep. The shared-key handshake buffers at most 64 KiB before authentication.
//
// The decoder works on byte slices of a reused per-connection read buffer with msgp's low-level
// Read*Bytes functions and converts each record map straight to JSON; it allocates nothing per
// event in steady state.
package forward
