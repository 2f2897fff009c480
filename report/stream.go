package report

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"

	"github.com/tcpstate/tcpstate/tracker"
)

// Stream writes connections one at a time, in ID order, as a streaming run finishes them
// (flowtable.StreamConfig, flowtable.Reorder): JSON and Zeek lines go out at once; the table, which
// sorts problems first, keeps a compact row per connection and is written by Close. Every
// format comes out byte for byte as the Write* functions write it for the same connections.
type Stream struct {
	w      *bufio.Writer
	o      *Options
	format string
	table  *TableWriter
	enc    *json.Encoder
	json   *JSONLine
	zeek   strings.Builder
	buf    []byte
	n      int
	err    error
}

// NewStream writes format (table, json, zeek, zeek-json; events: nothing, events are written
// as they happen) to w. o.Now must be set by the time Close is called; JSON and Zeek lines do
// not depend on it for connections that are finished (closed at both ends, or evicted or
// timed out, which count from their own instant).
func NewStream(w io.Writer, format string, o *Options) *Stream {
	s := &Stream{w: bufio.NewWriterSize(w, 256<<10), o: o, format: format}
	switch format {
	case "table":
		s.table = NewTableWriter(o)
	case "json":
		s.json = NewJSONLine(o)
	case "zeek-json":
		s.enc = json.NewEncoder(s.w)
	case "zeek":
		s.w.WriteString(zeekHeader())
	}
	return s
}

// Table is the table being built (nil unless the format is table), for extra footer lines.
func (s *Stream) Table() *TableWriter { return s.table }

// Conn writes (or, for the table, records) one connection; c is not kept.
func (s *Stream) Conn(c *tracker.Conn) {
	if s.err != nil {
		return
	}
	s.n++
	switch s.format {
	case "table":
		s.table.Add(c)
	case "json":
		s.buf = s.json.Append(s.buf[:0], c)
		_, s.err = s.w.Write(s.buf)
	case "zeek":
		s.zeek.Reset()
		writeZeekRows(&s.zeek, c)
		_, s.err = s.w.WriteString(s.zeek.String())
	case "zeek-json":
		s.err = writeZeekJSONRows(s.enc, c)
	}
}

// Close writes what is left (the table) and flushes.
func (s *Stream) Close() error {
	if s.err == nil && s.table != nil {
		s.err = s.table.Write(s.w)
	}
	if err := s.w.Flush(); s.err == nil {
		s.err = err
	}
	return s.err
}

// Flush writes out what is buffered, so that a live capture's lines leave as its connections
// finish; it returns the first error met writing.
func (s *Stream) Flush() error {
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}
