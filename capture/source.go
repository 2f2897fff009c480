package capture

import "fmt"

// Source yields TCP segments in timestamp order. Packets that are not TCP (or not decodable
// as TCP) are skipped and counted in Stats.
type Source interface {
	// Next fills seg with the next TCP segment and reports whether there was one. At the end of
	// the input, or when every input has stopped (possibly on damage), it returns false.
	Next(seg *Segment) bool
	// Errs lists the inputs that stopped before their end (damaged, truncated, unreadable after
	// opening). Check it after Next returns false; everything read before each error was
	// already delivered.
	Errs() []*ReadError
	// Stats counts what was read so far.
	Stats() Stats
	Close() error
}

// A RefSource is a Source that can hand out segments in place, saving the copy of each that
// Next makes (a quarter of a kilobyte: a few percent of the time a bulk transfer takes).
type RefSource interface {
	Source
	// NextRef is Next, except that it returns the segment where the source keeps it, or nil
	// where Next would return false. The segment stays valid and unchanged until the next
	// call to Next, NextRef or Close; the caller may change it but not keep it. Next and
	// NextRef may be mixed: they hand out the same sequence.
	NextRef() *Segment
}

// A SlotSource can also decode straight into memory the caller lends it, saving the copy of
// each segment from where the source decodes it to where the caller wants it.
type SlotSource interface {
	RefSource
	// NextIn is NextRef, except that the source may decode the segment the next call will
	// return into *slot (lent: where the caller wants that one), and hand it out from there.
	// The caller leaves *slot alone until that next call has returned, and does not lend it
	// to that call (it may hold the segment that call returns).
	NextIn(slot *Segment) *Segment
}

// Stats counts packets by fate.
type Stats struct {
	Packets   uint64 // records read from all inputs
	Bytes     int64  // bytes of input consumed (file offsets), for progress
	TCP       uint64 // delivered as Segments
	NonTCP    uint64 // not TCP, or TCP we could not decode (too short, bad header)
	Filtered  uint64 // rejected by the BPF filter
	Fragments uint64 // non-first IP fragments, ignored
	Truncated uint64 // TCP segments whose header the snaplen cut (still delivered when possible)
	// Live capture only: what the kernel and interface dropped (pcap statistics).
	KernelDropped uint64
	IfaceDropped  uint64
}

// ReadError says where reading an input stopped: which file, after which packet, at what byte
// offset, and why.
type ReadError struct {
	File   string // path as given ("-" for stdin)
	Packet uint64 // number of the packet that could not be read (1-based): the last good one is Packet-1
	Offset int64  // byte offset in the (decompressed) file where the bad record starts
	Err    error
}

func (e *ReadError) Error() string {
	if e.Packet == 0 {
		return fmt.Sprintf("%s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("%s: reading stopped at packet %d (byte offset %d): %v; the %d packet(s) before it were analysed",
		e.File, e.Packet, e.Offset, e.Err, e.Packet-1)
}

func (e *ReadError) Unwrap() error { return e.Err }
