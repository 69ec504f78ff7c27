// Package tail is the tail input: it discovers container log files by glob (following the
// /var/log/containers symlinks), reads them with a few reader goroutines shared by all files,
// parses CRI and docker json-file lines, joins partial lines, and emits records together with
// the file positions they reach, so a restart resumes exactly where the disk buffer ends.
//
// What it owns: discovery (fsnotify plus a periodic rescan), file identity (device and inode,
// a fingerprint of the first bytes against inode reuse), rotation (rename, copytruncate,
// delete) without loss, the bound on open descriptors, and its position encoding in the
// buffer's state. What it must never do: allocate per line in steady state, hold unbounded
// memory for one line, or block on anything but the Emitter.
package tail
