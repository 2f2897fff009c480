package capture

import (
	"encoding/binary"
	"io"
	"syscall"
)

// source reads one or more inputs as one capture: a k-way merge on timestamps. Each input is
// read ahead by one TCP segment (its head); Next hands out the earliest head and refills it.
// The merge is stable: on equal timestamps the earlier file goes first, and within a file the
// file's own order is kept even if its time goes backwards.
type source struct {
	inputs []*input
	heap   []*input // inputs with a pending head, a min-heap on (head.Time, index)
	primed bool
	closed bool
	dec    decoder
	filter *bpfFilter
	stats  Stats
	errs   []*ReadError

	tap      func(*Tapped) // Config.Tap
	count    uint64        // Config.Count
	selected uint64        // packets the filter selected so far
}

func (s *source) Next(seg *Segment) bool {
	p := s.NextRef()
	if p == nil {
		return false
	}
	*seg = *p
	return true
}

// NextRef hands out the earliest head in place: the slot it was decoded into. The input then
// reads ahead into its other slot, so the segment stays as it is until the next call.
func (s *source) NextRef() *Segment { return s.next(nil) }

// NextIn is NextRef, with the read-ahead of a single input decoded into slot. (With several,
// each input's head waits in it for an unknown number of calls: they keep their own slots.)
func (s *source) NextIn(slot *Segment) *Segment {
	if len(s.inputs) > 1 {
		slot = nil
	}
	return s.next(slot)
}

// next hands out the earliest head, and has its input read ahead into lent, if not nil.
func (s *source) next(lent *Segment) *Segment {
	if s.closed {
		return nil
	}
	if !s.primed {
		s.primed = true
		for _, in := range s.inputs {
			if s.advance(in, nil) {
				s.heap = append(s.heap, in)
				s.up(len(s.heap) - 1)
			}
		}
	}
	if len(s.heap) == 0 {
		return nil
	}
	in := s.heap[0]
	seg := in.head
	s.stats.TCP++
	if !s.advance(in, lent) {
		last := len(s.heap) - 1
		s.heap[0] = s.heap[last]
		s.heap[last] = nil
		s.heap = s.heap[:last]
	}
	if len(s.heap) > 1 {
		s.down(0)
	}
	return seg
}

// advance reads in up to its next TCP segment, into lent if not nil, else into the slot of
// in.slots that in.head does not point at (the one handed out last may still be in use), and
// points in.head at it. It reports false when the input has ended, cleanly or not.
func (s *source) advance(in *input, lent *Segment) bool {
	if in.done {
		return false
	}
	next := lent
	if next == nil {
		next = &in.slots[0]
		if in.head == next {
			next = &in.slots[1]
		}
	}
	for {
		if s.countReached() {
			in.close()
			return false
		}
		data, link, err := in.read()
		if err != nil {
			if err != io.EOF {
				s.errs = append(s.errs, &ReadError{File: in.name, Packet: in.records + 1, Offset: in.recOff, Err: err})
			}
			in.close()
			return false
		}
		in.records++
		s.stats.Packets++
		if s.filter != nil {
			if link == linkNull || link == linkLoop {
				normalizeLoopback(link, data)
			}
			if !s.filter.match(link, data, in.wireLen) {
				s.stats.Filtered++
				continue
			}
		}
		if s.tap != nil || s.count > 0 {
			s.tapped(in, link, data)
		}
		switch s.dec.decode(link, data, in.wireLen, next) {
		case isTCP:
			h := next
			in.head = h
			h.Time = in.timestamp()
			h.File = uint16(in.index)
			h.Packet = in.records
			h.Offset = in.recOff
			if h.Truncated {
				s.stats.Truncated++
			}
			return true
		case isFragment:
			s.stats.Fragments++
		case truncatedTCP:
			s.stats.Truncated++
			s.stats.NonTCP++
		default:
			s.stats.NonTCP++
		}
	}
}

// normalizeLoopback rewrites the 4-byte address family of a BSD loopback frame, in place, into
// what filters compiled by libpcap for this machine test: AF_INET or this machine's AF_INET6, in
// this machine's byte order for NULL and network order for LOOP. Files carry the writer's values
// (AF_INET6 is 24, 28 or 30 on the BSDs and macOS, 23 on Windows) in the writer's byte order, and
// libpcap only accounts for that when it reads the file itself. Without this, "ip6" or "tcp"
// would silently match nothing in a capture taken on a Mac.
func normalizeLoopback(link uint16, data []byte) {
	if len(data) < 4 {
		return
	}
	v, ok := loopbackFamily(data)
	if !ok {
		return
	}
	af := uint32(syscall.AF_INET)
	if v == 6 {
		af = uint32(syscall.AF_INET6)
	}
	if link == linkLoop || nativeBigEndian() {
		binary.BigEndian.PutUint32(data, af)
	} else {
		binary.LittleEndian.PutUint32(data, af)
	}
}

// less orders inputs by their heads: time, then file order.
func (s *source) less(i, j int) bool {
	a, b := s.heap[i], s.heap[j]
	if !a.head.Time.Equal(b.head.Time) {
		return a.head.Time.Before(b.head.Time)
	}
	return a.index < b.index
}

func (s *source) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.less(i, p) {
			return
		}
		s.heap[i], s.heap[p] = s.heap[p], s.heap[i]
		i = p
	}
}

func (s *source) down(i int) {
	n := len(s.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			return
		}
		s.heap[i], s.heap[m] = s.heap[m], s.heap[i]
		i = m
	}
}

func (s *source) Errs() []*ReadError { return s.errs }

func (s *source) Stats() Stats {
	st := s.stats
	for _, in := range s.inputs {
		st.Bytes += in.progress()
	}
	return st
}

func (s *source) Close() error {
	var first error
	for _, in := range s.inputs {
		if err := in.close(); err != nil && first == nil {
			first = err
		}
	}
	s.closed = true
	s.heap = nil
	return first
}
