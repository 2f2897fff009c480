package report

import (
	"time"

	"github.com/tcpstate/tcpstate/tracker"
)

// Snapshot records (--snapshot-every): the JSON line of a connection still open, as it stood at
// an instant, marked so that a consumer tells it from the connection's final record:
//
//	{"id":3,...,"snapshot":true,"snapshot_at":"2026-11-24T18:48:00.000000Z"}
//
// A connection open for days has a snapshot at every interval and its final record once it
// ends; the final record has no "snapshot" field.

// SnapshotJSON writes snapshot records.
type SnapshotJSON struct {
	o Options // the run's options, with Now the snapshot's instant
	j *JSONLine
}

// NewSnapshotJSON writes snapshot records with the options of the run (names, profile, -v).
func NewSnapshotJSON(o *Options) *SnapshotJSON {
	s := &SnapshotJSON{o: *o}
	s.j = NewJSONLine(&s.o)
	return s
}

// Append appends c's snapshot record at instant at (with its newline) to b.
func (s *SnapshotJSON) Append(b []byte, c *tracker.Conn, at time.Time) []byte {
	s.o.Now = at
	start := len(b)
	b = s.j.Append(b, c)
	if len(b) < start+2 {
		return b
	}
	b = b[:len(b)-2] // the closing "}\n"
	b = append(b, `,"snapshot":true,"snapshot_at":`...)
	b = s.j.time(b, at)
	return append(b, "}\n"...)
}

// Raw writes b as it is, between the connections' lines (snapshot records of a streaming run).
func (s *Stream) Raw(b []byte) {
	if s.err == nil {
		_, s.err = s.w.Write(b)
	}
}
