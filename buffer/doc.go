// Package buffer is tailgate's disk buffer: a segmented, checksummed, append-only log of opaque
// frames with one cursor per consumer. It knows nothing about records.
//
// Layout of a data dir:
//
//	<dir>/LOCK                     held (flock) by the one process that has the buffer open
//	<dir>/segments/%020d.seg       a 16-byte segment header, then frames
//	<dir>/cursors/<name>           one 28-byte checksummed cursor per reader, written by rename
//
// A frame is a 24-byte header (magic, kind, payload length, CRC-32C, record count, append time)
// followed by its payload; frames never span segments. The first frame of every segment the
// buffer creates is a KindCheckpoint frame, so a restart can rebuild input positions from the
// newest checkpoint and the data frames after it (Recover).
//
// Durability is a group commit (sync.go): one fdatasync covers every frame appended before it.
// Frames nobody waits for are synced every Options.Sync; a WaitDurable caller starts a commit as
// soon as the disk is free, and the waiters that arrive meanwhile share the next one.
//
// Damage never stops the buffer: a torn tail is truncated at Open, a corrupt frame in the middle
// of a segment is counted and skipped by scanning forward for the next frame whose magic and
// CRC check out, and a missing or corrupt cursor restarts its reader at the oldest retained
// frame (duplicates, never loss). The package must never panic on what it reads from disk.
package buffer
