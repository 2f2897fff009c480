// One side of a row, as Zeek's TCP_Endpoint keeps it: sequence tracking, Size, scaled history
// entries; and the row's clock.

package zeek

import (
	"github.com/tcpstate/tcpstate/capture"
)

// scaled is Zeek's ScaledHistoryEntry: true at the 1st, 10th, 100th, ... occurrence.
type scaled struct{ cnt, thresh uint32 }

func (s *scaled) hit() bool {
	if s.thresh == 0 {
		s.thresh = 1
	}
	s.cnt++
	if s.cnt != s.thresh {
		return false
	}
	if nt := s.thresh * 10; nt <= s.thresh {
		s.cnt = 0
	} else {
		s.thresh = nt
	}
	return true
}

type span struct{ from, to uint64 }

// zendpoint is TCP_Endpoint.
type zendpoint struct {
	state, prev State
	startSeq    int64
	lastSeq     capture.Seq
	ackSeq      capture.Seq
	seqWraps    uint32
	ackWraps    uint32
	// Relative sequence numbers of the last SYN, FIN and RST, for repeated letters.
	lastSYN, lastFIN, lastRST uint64
	finCnt, rstCnt            int
	finSeq                    uint64
	didClose                  bool
	chk, rxmt, win0, gap      scaled
	re                        zreasm
}

func (e *zendpoint) relSeqSpace(seq capture.Seq, wraps uint32) uint64 {
	return uint64(wraps)<<32 + uint64(seq) - uint64(e.startSeq)
}

// noDataAcked: none of the endpoint's data acknowledged (one octet allowed, for the SYN).
func (e *zendpoint) noDataAcked() bool {
	ack := uint64(e.ackWraps)<<32 + uint64(e.ackSeq)
	start := uint64(e.startSeq)
	return ack == start || ack == start+1
}

// size is TCP_Endpoint::Size: payload bytes from sequence numbers.
func (e *zendpoint) size(peer *zendpoint) uint64 {
	if e.prev == SynSent && e.state == Reset && peer.state == Inactive && !e.noDataAcked() {
		return 0
	}
	last := uint64(e.seqWraps)<<32 + uint64(e.lastSeq)
	ack := uint64(e.ackWraps)<<32 + uint64(e.ackSeq)
	var size uint64
	if last > ack {
		size = last - uint64(e.startSeq)
	} else {
		size = ack - uint64(e.startSeq)
	}
	if size != 0 {
		size--
	}
	if e.finCnt > 0 && size != 0 {
		size--
	}
	return size
}

func (e *zendpoint) updateLastSeq(seq capture.Seq) {
	if seq < e.lastSeq {
		e.seqWraps++
	}
	e.lastSeq = seq
}
