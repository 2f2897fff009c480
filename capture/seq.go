package capture

// Seq is a TCP sequence (or acknowledgment) number. Comparisons are modular (RFC 1982
// serial-number arithmetic): a is before b when the signed 32-bit distance from b to a is
// negative, so they stay right across the 2^32 wrap. Like gVisor's seqnum.Value, it is the one
// sequence type from the decoder to the reports.
type Seq uint32

// LT reports a < b in sequence space.
func (a Seq) LT(b Seq) bool { return int32(a-b) < 0 }

// LEQ reports a <= b in sequence space.
func (a Seq) LEQ(b Seq) bool { return int32(a-b) <= 0 }

// GT reports a > b in sequence space.
func (a Seq) GT(b Seq) bool { return int32(a-b) > 0 }

// GEQ reports a >= b in sequence space.
func (a Seq) GEQ(b Seq) bool { return int32(a-b) >= 0 }

// Sub is the signed distance a - b.
func (a Seq) Sub(b Seq) int64 { return int64(int32(a - b)) }

// InWindow reports whether a lies in [lo, lo+size).
func (a Seq) InWindow(lo Seq, size uint32) bool { return uint32(a-lo) < size }
