// Package collector is tailgate's engine: the record type and its JSON envelope, the frame codec
// that turns batches of records into opaque buffer frames, the config, the router, and the
// pipeline that connects inputs to the disk buffer and the buffer to the sinks.
//
// Inputs live in subpackages (collector/tail, collector/forward) and only see the Emitter
// interface; sinks live in the top-level sinks/ tree and only implement Sink. The collector
// never imports a sink or an input.
package collector
