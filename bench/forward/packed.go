package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/tinylib/msgp/msgp"
)

// runPacked is not fluent-logger-golang: it sends PackedForward chunks of chunk records with a
// chunk id and keeps up to inflight chunks unacknowledged on the connection, the way Fluent Bit
// and fluentd forward. It measures what the agent can take with acks when the sender batches;
// the latency is per chunk, from its write to its ack.
func runPacked(l load, chunk, inflight int) result {
	nc, err := net.DialTimeout("tcp", l.addr, 10*time.Second)
	if err != nil {
		return result{err: fmt.Errorf("client %d: %w", l.client, err)}
	}
	defer nc.Close()

	type sentChunk struct {
		id      string
		records int64
		at      time.Time
	}
	queue := make(chan sentChunk, inflight) // in write order; the agent acks in order
	readDone := make(chan result, 1)
	go func() {
		res := result{}
		r := msgp.NewReader(nc)
		for s := range queue {
			ack, err := readAck(r)
			if err != nil {
				res.err = fmt.Errorf("client %d: read ack: %w", l.client, err)
				nc.Close() // unblocks the writer
				for range queue {
				}
				break
			}
			if ack != s.id {
				res.err = fmt.Errorf("client %d: ack %q, want %q", l.client, ack, s.id)
				nc.Close()
				for range queue {
				}
				break
			}
			res.latencies = append(res.latencies, time.Since(s.at))
			res.acked += s.records
		}
		readDone <- res
	}()

	rec := newRecord(l.client, l.size)
	w := bufio.NewWriterSize(nc, 256<<10)
	var entries, frame []byte
	var werr error
	for seq, n := int64(0), 0; seq < l.records && time.Now().Before(l.deadline); n++ {
		entries = entries[:0]
		k := min(int64(chunk), l.records-seq)
		now := time.Now()
		for i := int64(0); i < k; i++ {
			rec.seq = seq + i
			entries = msgp.AppendArrayHeader(entries, 2)
			entries = appendEventTime(entries, now)
			entries, _ = rec.MarshalMsg(entries)
		}
		id := chunkID(l.client, n)
		frame = msgp.AppendArrayHeader(frame[:0], 3)
		frame = msgp.AppendString(frame, "bench.forward")
		frame = msgp.AppendBytes(frame, entries)
		frame = msgp.AppendMapHeader(frame, 2)
		frame = msgp.AppendString(frame, "chunk")
		frame = msgp.AppendString(frame, id)
		frame = msgp.AppendString(frame, "size")
		frame = msgp.AppendInt64(frame, k)
		queue <- sentChunk{id: id, records: k, at: time.Now()} // blocks at inflight
		if _, werr = w.Write(frame); werr == nil {
			werr = w.Flush()
		}
		if werr != nil {
			break
		}
		seq += k
	}
	close(queue)
	res := <-readDone
	if res.err == nil && werr != nil {
		res.err = fmt.Errorf("client %d: write: %w", l.client, werr)
	}
	return res
}

// appendEventTime appends the forward protocol's EventTime: ext type 0, big-endian seconds
// and nanoseconds.
func appendEventTime(b []byte, t time.Time) []byte {
	b = append(b, 0xd7, 0x00)
	b = binary.BigEndian.AppendUint32(b, uint32(t.Unix()))
	return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
}

func chunkID(client, n int) string {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], uint64(client))
	binary.LittleEndian.PutUint64(raw[8:], uint64(n))
	return base64.StdEncoding.EncodeToString(raw[:])
}

// readAck reads one {"ack": id} map.
func readAck(r *msgp.Reader) (string, error) {
	n, err := r.ReadMapHeader()
	if err != nil {
		return "", err
	}
	ack := ""
	for range n {
		k, err := r.ReadString()
		if err != nil {
			return "", err
		}
		if k == "ack" {
			if ack, err = r.ReadString(); err != nil {
				return "", err
			}
			continue
		}
		if err := r.Skip(); err != nil {
			return "", err
		}
	}
	return ack, nil
}
