// Zeek's TCPSessionAdapter for one conn.log row: Process, UpdateStateMachine and its
// Update*State helpers, history letters, ConnectionClosed and conn_state.

package zeek

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// zrow is one Zeek connection: Connection plus TCPSessionAdapter.
type zrow struct {
	cfg     *Config
	orig    Side      // which of our sides is Zeek's originator
	ports   [2]uint16 // by side
	ep      [2]zendpoint
	history []byte
	seen    [2]uint16 // hist_seen, by role: [0] originator, [1] responder

	start, lastTime capture.Time
	pkts, ipBytes   [2]uint64 // by role, as ConnSize counts (its counters flip with the roles)
	missed          uint64

	firstPacketSeen uint8 // bit 1 orig, bit 2 resp
	isPartial       bool
	active          bool // is_active
	closeDeferred   bool
	deferredGen     bool

	// Timers. Zero times are unset.
	inactivity  time.Duration
	attemptAt   capture.Time
	expireAt    []capture.Time // pending ExpireTimer instances
	deleteAt    capture.Time   // ConnDeleteTimer
	established bool           // connection_established raised in this packet
}

const (
	zeekOrig = 1
	zeekResp = 2
)

// newZrow starts a row; it reuses old (and its buffers) when given.
func newZrow(cfg *Config, seg *capture.Segment, from Side, old *zrow, t capture.Time) *zrow {
	r := old
	if r == nil {
		r = &zrow{}
	}
	*r = zrow{cfg: cfg, orig: from, start: t, lastTime: t, active: true,
		inactivity: zeekInitialInactivity, history: r.history[:0], expireAt: r.expireAt[:0]}
	for i := range r.ep {
		// The rest of zreasm is zero already: setting the two fields spares copying the whole
		// struct (and its pointer's write barrier).
		r.ep[i].re.lastReassem, r.ep[i].re.trim = 1, 1
	}
	r.expireAt = append(r.expireAt, t.Add(zeekSYNTimeout))
	r.ports[from], r.ports[1-from] = seg.Src.Port(), seg.Dst.Port()
	// TCPAnalyzer::WantConnection: a connection not starting with a pure SYN is flipped when
	// its source port looks like a server's and its destination's does not (or both do, the
	// packet is no SYN-ACK and the source port is the lower).
	f := seg.Flags
	if !f.Has(capture.SYN) || f.Has(capture.ACK) {
		sp, dp := seg.Src.Port(), seg.Dst.Port()
		if cfg.likely(sp) {
			flip := true
			if cfg.likely(dp) {
				flip = !f.Has(capture.SYN) && sp < dp
			}
			if flip {
				r.flipRoles()
			}
		}
	}
	return r
}

func (r *zrow) isOrig(s Side) bool { return s == r.orig }

func (r *zrow) role(s Side) int {
	if s == r.orig {
		return 0
	}
	return 1
}

// flipRoles is Connection::FlipRoles with TCPSessionAdapter::FlipRoles.
func (r *zrow) flipRoles() {
	r.orig = 1 - r.orig
	fps := r.firstPacketSeen
	r.firstPacketSeen = 0
	if fps&zeekOrig != 0 {
		r.firstPacketSeen |= zeekResp
	}
	if fps&zeekResp != 0 {
		r.firstPacketSeen |= zeekOrig
	}
	r.isPartial = false
	r.pkts[0], r.pkts[1] = r.pkts[1], r.pkts[0]
	r.ipBytes[0], r.ipBytes[1] = r.ipBytes[1], r.ipBytes[0]
	r.history = append(r.history, '^')
}

func (r *zrow) letter(s Side, c byte) {
	if !r.isOrig(s) {
		c += 'a' - 'A'
	}
	r.history = append(r.history, c)
}

// checkHistory is Connection::CheckHistory: adds c the first time mask is seen for s's role
// and reports whether it had been seen before.
func (r *zrow) checkHistory(s Side, mask uint16, c byte) bool {
	ro := r.role(s)
	if r.seen[ro]&mask == 0 {
		r.seen[ro] |= mask
		r.letter(s, c)
		return false
	}
	return true
}

func (r *zrow) setState(s Side, st State) {
	e, peer := &r.ep[s&1], &r.ep[(s&1)^1]
	if st == e.state {
		return
	}
	if !isHandshake(st) && isHandshake(e.state) && isHandshake(peer.state) {
		r.setInactivity(zeekTCPInactivity)
	}
	e.prev, e.state = e.state, st
}

func segLen(n uint32, f capture.Flags) uint32 {
	l := n
	if f.Has(capture.SYN) {
		l++
	}
	if f.Has(capture.FIN) {
		l++
	}
	if f.Has(capture.RST) {
		l -= n
	}
	return l
}

func seqDelta(a, b capture.Seq) int32 { return int32(a - b) }

// relSeqFast is relSeq when no wrap was seen and cur makes none (ok); it inlines.
func relSeqFast(e *zendpoint, cur, last capture.Seq, wraps uint32) (rel uint64, under, ok bool) {
	if wraps != 0 || (cur < last && seqDelta(cur, last) > 0) {
		return 0, false, false
	}
	d := seqDelta(cur, capture.Seq(e.startSeq))
	return uint64(int64(d)), d < 0, true
}

// relSeq is get_relative_seq.
func relSeq(e *zendpoint, cur, last capture.Seq, wraps uint32) (uint64, bool) {
	delta := seqDelta(cur, last)
	if delta < 0 {
		if wraps > 0 && cur > last {
			wraps--
		}
	} else if delta > 0 && cur < last {
		wraps++
	}
	if wraps == 0 {
		d := seqDelta(cur, capture.Seq(e.startSeq))
		return uint64(int64(d)), d < 0
	}
	return e.relSeqSpace(cur, wraps), false
}

// fastPacket is packet for the common segment: no SYN, FIN or RST, a good checksum, a whole
// header, and both endpoints past Inactive. It reports false, having changed nothing, for any
// other segment. For such a segment init_endpoint and UpdateStateMachine do nothing and no
// role flip can happen, so this is packet with those parts left out; from is 0 or 1.
func (r *zrow) fastPacket(seg *capture.Segment, from Side, t capture.Time) bool {
	f := seg.Flags
	if f&(capture.SYN|capture.FIN|capture.RST) != 0 || seg.BadChecksum || seg.Truncated {
		return false
	}
	from &= 1
	ep, peer := &r.ep[from], &r.ep[from^1]
	if ep.state == Inactive || peer.state == Inactive {
		return false
	}
	isOrig := from == r.orig
	role := int((from ^ r.orig) & 1) // r.role(from)
	r.established = false

	baseSeq, n := seg.Seq, seg.PayloadLen
	r.setPartialStatus(f, isOrig)
	onePast := baseSeq + capture.Seq(n) // segLen
	rel, underflow, ok := relSeqFast(ep, baseSeq, ep.lastSeq, ep.seqWraps)
	if !ok {
		rel, underflow = relSeq(ep, baseSeq, ep.lastSeq, ep.seqWraps)
	}
	// update_history
	if n > 0 {
		if r.seen[role]&histData == 0 {
			r.seen[role] |= histData
			r.letter(from, 'D')
		}
	} else if f&capture.ACK != 0 {
		if r.seen[role]&histAck == 0 {
			r.seen[role] |= histAck
			r.letter(from, 'A')
		}
	}
	if seg.Window == 0 && peer.state != Closed && ep.state != Reset {
		if ep.win0.hit() {
			r.letter(from, 'W')
		}
	}
	if !r.ep[0].didClose || !r.ep[1].didClose {
		r.lastTime = t
	}
	var relAck uint64
	if f&capture.ACK != 0 {
		ackSeq := seg.Ack
		ra, under, ok := relSeqFast(peer, ackSeq, peer.ackSeq, peer.ackWraps)
		if !ok {
			ra, under = relSeq(peer, ackSeq, peer.ackSeq, peer.ackWraps)
		}
		if !under {
			relAck = ra
			d := seqDelta(ackSeq, peer.ackSeq)
			if !(ackSeq == 0 && d > zeekTooLargeSeqDelta) && d > 0 {
				if ackSeq < peer.ackSeq {
					peer.ackWraps++
				}
				peer.ackSeq = ackSeq
			}
		}
	}
	// update_last_seq
	switch d := seqDelta(onePast, ep.lastSeq); {
	case ep.state == Reset:
	case d > 0:
		ep.updateLastSeq(onePast)
	case n > 0:
		if ep.rxmt.hit() {
			r.letter(from, 'T')
		}
	}
	if f&capture.ACK != 0 {
		// The test that ackReceived starts with: most ACKs acknowledge nothing new.
		seq := relAck
		if peer.finCnt > 0 && seq >= peer.finSeq {
			seq = peer.finSeq - 1
		}
		if seq > peer.re.trim {
			if seq <= peer.re.lastReassem && !peer.eofMayBeDue() {
				peer.re.trim = seq // all ackReceived does then
			} else {
				r.ackReceived(from^1, relAck)
			}
		}
	}
	// CheckPIA_FirstPacket
	if isOrig {
		r.firstPacketSeen |= zeekOrig
	} else {
		r.firstPacketSeen |= zeekResp
	}
	if n > 0 && !underflow {
		re := &ep.re
		if !re.skip && len(re.pending) == 0 && rel == re.lastReassem && rel >= re.trim &&
			rel >= ep.relSeqSpace(ep.ackSeq, ep.ackWraps) && !ep.noDataAcked() {
			// dataSent for the next bytes in order, nothing above a hole, some data acked.
			re.lastReassem = rel + uint64(n)
			if re.lastReassem-re.trim > zeekExcessiveData {
				re.pending = nil
				re.skip = true
			}
		} else {
			r.dataSent(from, rel, uint64(n))
		}
	}
	if ep.eofMayBeDue() {
		r.checkEOF(from)
	}
	// ConnSize counts with the direction the packet had when it arrived.
	r.pkts[role]++
	r.ipBytes[role] += uint64(seg.IPLen)
	return true
}

// packet is TCPAnalyzer::DeliverPacket and TCPSessionAdapter::Process for one segment, at t
// (seg.Time). from is 0 or 1. (fastPacket does the common segments; TestZeekFastPathsAsFullPath
// checks it against this.)
func (r *zrow) packet(seg *capture.Segment, from Side, t capture.Time) {
	f := seg.Flags
	from &= 1
	ep, peer := &r.ep[from], &r.ep[from^1]

	if seg.BadChecksum {
		// TCPAnalyzer::ValidateChecksum: the packet goes no further.
		if ep.chk.hit() {
			r.letter(from, 'C')
		}
		return
	}
	if seg.Truncated {
		return // truncated_header: the TCP header is not all there
	}
	// A connection that began with a SYN-ACK, and has seen nothing else, that now sees an ACK
	// or data (either way) was no stealth scan: the SYN-ACK's sender is the responder
	// (zeek/zeek#2191). Zeek decides it before the packet is counted, and writes the history
	// as if the roles had been known from the start ("^h").
	if o, p := &r.ep[r.orig], &r.ep[1-r.orig]; string(r.history) == "H" && o.state == SynAckSent &&
		p.state == Inactive && !f.Has(capture.SYN) && !f.Has(capture.RST) &&
		(f.Has(capture.ACK) || seg.PayloadLen > 0) {
		r.flipFromSynAck()
	}
	isOrig, role := r.isOrig(from), r.role(from)
	r.established = false

	baseSeq, ackSeq, n := seg.Seq, seg.Ack, seg.PayloadLen
	r.setPartialStatus(f, isOrig)
	sl := segLen(n, f)
	onePast := baseSeq + capture.Seq(sl)
	r.initEndpoint(ep, f, baseSeq, onePast)
	rel, underflow := relSeq(ep, baseSeq, ep.lastSeq, ep.seqWraps)
	r.updateHistory(from, f, rel, uint64(n))
	if seg.Window == 0 && !f.Has(capture.RST) && peer.state != Closed && ep.state != Reset {
		if ep.win0.hit() {
			r.letter(from, 'W')
		}
	}
	if !r.ep[0].didClose || !r.ep[1].didClose {
		r.lastTime = t
	}
	if f.Has(capture.FIN) {
		ep.finCnt++
		ep.finSeq = rel + uint64(sl)
	}
	if f.Has(capture.RST) {
		ep.rstCnt++
	}
	var relAck uint64
	if f.Has(capture.ACK) {
		if peer.state == Inactive {
			relAck = 1
			peer.startSeq = int64(ackSeq - 1)
			peer.ackSeq = ackSeq - 1
			peer.lastSeq = ackSeq - 1
		} else {
			ra, under := relSeq(peer, ackSeq, peer.ackSeq, peer.ackWraps)
			if under {
				relAck = 0
			} else {
				relAck = ra
				if !f.Has(capture.RST) {
					d := seqDelta(ackSeq, peer.ackSeq)
					if !(ackSeq == 0 && d > zeekTooLargeSeqDelta) && d > 0 {
						if ackSeq < peer.ackSeq {
							peer.ackWraps++
						}
						peer.ackSeq = ackSeq
					}
				}
			}
		}
	}
	r.updateLastSeq(from, onePast, f, n)

	doClose, genEvent := r.updateStateMachine(t, from, baseSeq, ackSeq, n, isOrig, f)

	if f.Has(capture.ACK) {
		r.ackReceived(from^1, relAck)
	}
	// CheckPIA_FirstPacket
	if isOrig {
		r.firstPacketSeen |= zeekOrig
	} else {
		r.firstPacketSeen |= zeekResp
	}
	relData := rel
	if f.Has(capture.SYN) {
		relData++
	}
	if n > 0 && !f.Has(capture.RST) && !underflow {
		r.dataSent(from, relData, uint64(n))
	}
	r.checkEOF(from)
	if doClose {
		r.connectionClosed(from, genEvent)
	}

	// ConnSize counts with the direction the packet had when it arrived.
	r.pkts[role]++
	r.ipBytes[role] += uint64(seg.IPLen)

	if r.established && !r.cfg.bare() {
		// base/protocols/conn/inactivity.zeek, on connection_established.
		o, p := r.portOf(r.orig), r.portOf(1-r.orig)
		svc := p
		if r.ep[r.orig].state == Inactive && !r.cfg.likely(p) && r.cfg.likely(o) {
			svc = o
		}
		if zeekInteractivePorts.has(svc) {
			r.setInactivity(zeekInteractive)
		}
	}
}

// ports, by side, recorded on the first packet.
func (r *zrow) portOf(s Side) uint16 { return r.ports[s] }

// flipFromSynAck flips a connection whose first packet, a SYN-ACK, turned out to come from the
// responder; the history is rewritten as if the roles had been known from the start.
func (r *zrow) flipFromSynAck() {
	h := r.history
	r.flipRoles()
	nh := make([]byte, 0, len(h)+1)
	nh = append(nh, '^')
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		nh = append(nh, c)
	}
	r.history = nh
	r.seen[0], r.seen[1] = r.seen[1], r.seen[0]
}

func (r *zrow) setPartialStatus(f capture.Flags, isOrig bool) {
	if isOrig {
		if r.firstPacketSeen&zeekOrig == 0 {
			r.isPartial = !f.Has(capture.SYN) || f.Has(capture.ACK)
		}
	} else if r.firstPacketSeen&zeekResp == 0 && !r.isPartial {
		r.isPartial = !f.Has(capture.SYN)
	}
}

// initEndpoint is init_endpoint.
func (r *zrow) initEndpoint(e *zendpoint, f capture.Flags, first, last capture.Seq) {
	reinit := func() {
		e.startSeq = int64(first)
		e.ackSeq = first
		e.lastSeq = last
	}
	switch e.state {
	case Inactive:
		if f.Has(capture.SYN) {
			e.ackSeq = first
			e.startSeq = int64(first)
		} else {
			e.ackSeq = first - 1
			e.startSeq = int64(first - 1)
			last = first
		}
		e.lastSeq = last
	case SynSent, SynAckSent:
		if f.Has(capture.SYN) && first != capture.Seq(e.startSeq) {
			reinit()
		}
	case Established, Partial:
		if f.Has(capture.SYN) {
			reinit()
		}
	case Reset:
		if f.Has(capture.SYN) && e.prev == Inactive {
			reinit()
		}
	}
}

// updateHistory is update_history.
func (r *zrow) updateHistory(s Side, f capture.Flags, rel, n uint64) {
	e := &r.ep[s&1]
	ctl := f & (capture.SYN | capture.FIN | capture.RST)
	switch {
	case ctl&(ctl-1) != 0: // more than one of them
		if f.Has(capture.FIN | capture.RST) {
			r.checkHistory(s, histFinRst, 'I')
		} else {
			r.checkHistory(s, histMulti, 'Q')
		}
	case ctl != 0:
		if f.Has(capture.SYN) {
			code := byte('S')
			if f.Has(capture.ACK) {
				code = 'H'
			}
			if r.checkHistory(s, histSYN, code) && rel != e.lastSYN {
				r.letter(s, code)
			}
			e.lastSYN = rel
		}
		if f.Has(capture.FIN) {
			if r.checkHistory(s, histFIN, 'F') && rel+n != e.lastFIN {
				r.letter(s, 'F')
			}
			e.lastFIN = rel + n
		}
		if f.Has(capture.RST) {
			if r.checkHistory(s, histRST, 'R') && rel != e.lastRST {
				r.letter(s, 'R')
			}
			e.lastRST = rel
		}
	default:
		if n > 0 {
			r.checkHistory(s, histData, 'D')
		} else if f.Has(capture.ACK) {
			r.checkHistory(s, histAck, 'A')
		}
	}
}

// updateLastSeq is update_last_seq: a payload that does not advance the highest sequence
// number seen is a retransmission ('T').
func (r *zrow) updateLastSeq(s Side, last capture.Seq, f capture.Flags, n uint32) {
	e := &r.ep[s&1]
	d := seqDelta(last, e.lastSeq)
	switch {
	case (f.Has(capture.SYN) || f.Has(capture.RST)) && (d > zeekTooLargeSeqDelta || d < -zeekTooLargeSeqDelta):
	case f.Has(capture.FIN) && e.lastSeq == capture.Seq(e.startSeq)+1:
		e.updateLastSeq(last)
	case e.state == Reset:
	case d > 0:
		e.updateLastSeq(last)
	case n > 0:
		if e.rxmt.hit() {
			r.letter(s, 'T')
		}
	}
}

// updateStateMachine is UpdateStateMachine and the Update*State functions.
func (r *zrow) updateStateMachine(t capture.Time, s Side, baseSeq, ackSeq capture.Seq, n uint32, isOrig bool,
	f capture.Flags) (doClose, genEvent bool) {
	e, peer := &r.ep[s&1], &r.ep[(s&1)^1]
	syn, fin, rst, ack := f.Has(capture.SYN), f.Has(capture.FIN), f.Has(capture.RST), f.Has(capture.ACK)
	switch e.state {
	case Inactive:
		if syn {
			if isOrig {
				if ack {
					r.setState(s, SynAckSent)
				} else {
					r.setState(s, SynSent)
				}
				if r.attemptAt == 0 {
					r.attemptAt = t.Add(zeekAttemptDelay)
				}
			} else {
				if !ack && peer.state == SynAckSent && baseSeq == capture.Seq(e.startSeq) {
					// A SYN/SYN-ACK reversal: flip and establish.
					r.isPartial = false
					r.flipRoles()
					r.setState(1-s, Established)
					r.firstPacketSeen |= zeekOrig
				}
				if peer.state == SynSent {
					r.setState(1-s, Established)
				}
				r.setState(s, Established)
				if peer.state != Partial {
					r.established = true
				}
			}
		}
		if fin {
			r.setState(s, Closed)
			doClose, genEvent = true, true
		}
		if rst {
			r.setState(s, Reset)
			reject := false
			if isOrig {
				reject = peer.state == Established
			} else {
				reject = peer.state == SynSent || peer.state == SynAckSent
			}
			doClose, genEvent = true, !reject
		}
		if e.state == Inactive {
			switch {
			case !isOrig && n == 0 && r.ep[r.orig].state == SynSent:
				// An ACK of the SYN before the SYN-ACK: not a partial connection.
			case ack && peer.state == Established:
				// SYN-ACK seen but not the SYN, and now an ACK: the SYN was missed.
				r.setState(s, Established)
				r.isPartial = false
				if r.isOrig(s) {
					r.firstPacketSeen |= zeekOrig
				} else {
					r.firstPacketSeen |= zeekResp
				}
			default:
				r.setState(s, Partial)
			}
		}
	case SynSent, SynAckSent:
		if fin {
			r.setState(s, Closed)
			doClose, genEvent = true, true
		}
		if rst {
			r.setState(s, Reset)
			r.active = false // ConnectionReset
			doClose = true
		}
	case Established, Partial:
		if syn && e.state == Partial && peer.state == Inactive && !ack {
			r.setState(s, SynSent)
		}
		if fin && !rst {
			r.setState(s, Closed)
			if peer.state == Reset && peer.prev == Closed {
				// The peer's FIN then RST was a normal close after all.
				r.setState(1-s, Closed)
			}
			doClose, genEvent = true, true
		}
		if rst {
			r.setState(s, Reset)
			doClose = true
			if peer.state != Reset || peer.prev != Established {
				r.active = false
			}
		}
	case Closed:
		if rst && peer.state != Closed {
			r.setState(s, Reset)
			if !e.didClose {
				doClose = true
			}
		}
	case Reset:
	}
	return doClose, genEvent
}

func isClean(e *zendpoint) bool {
	return e.state == Established || (e.state == Closed && e.prev == Established)
}

// connectionClosed is TCPSessionAdapter::ConnectionClosed.
func (r *zrow) connectionClosed(s Side, genEvent bool) {
	e, peer := &r.ep[s&1], &r.ep[(s&1)^1]
	if r.dataPending(s) {
		r.closeDeferred = true
		if !r.deferredGen {
			r.deferredGen = genEvent
		}
		return
	}
	r.closeDeferred = false
	if e.didClose {
		return
	}
	e.didClose = true
	if e.state == Reset || peer.didClose || peer.state == Inactive {
		if e.prev != Inactive || peer.state != Inactive {
			if r.deferredGen {
				genEvent = true
				r.deferredGen = false
			}
			if genEvent {
				r.active = false // ConnectionFinished
			}
		}
		r.cancelTimers()
		if d := r.lastTime.Add(zeekCloseDelay); r.deleteAt == 0 || d < r.deleteAt {
			r.deleteAt = d
		}
	} else if e.prev != Inactive {
		r.addTimer(r.lastTime.Add(zeekSessionTimer))
	}
}

// connState is conn_state() of base/protocols/conn/main.zeek.
func (r *zrow) connState() string {
	o, p := &r.ep[r.orig], &r.ep[1-r.orig]
	os, rs := o.state, p.state
	oInactive := os == Inactive || os == Partial
	rInactive := rs == Inactive || rs == Partial
	switch {
	case rs == Reset:
		if os == SynSent || os == SynAckSent || (os == Reset && o.size(p) == 0 && p.size(o) == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == Reset:
		if rInactive {
			if rstos0(string(r.history)) {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == Closed && os == Closed:
		return "SF"
	case os == Closed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == Closed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == SynSent && rs == Inactive:
		return "S0"
	case os == Established && rs == Established:
		return "S1"
	}
	return "OTH"
}

func (r *zrow) row() Row {
	o, p := &r.ep[r.orig], &r.ep[1-r.orig]
	return Row{Orig: r.orig, Start: r.start.Std(), Last: r.lastTime.Std(), ConnState: r.connState(),
		History: string(r.history), Pkts: r.pkts, IPBytes: r.ipBytes,
		Bytes: [2]uint64{o.size(p), p.size(o)}, MissedBytes: r.missed, States: [2]State{o.state, p.state}}
}

// rstos0 matches Zeek's /\^?S[^HAFGIQ]*R.*/ against the whole history.
func rstos0(h string) bool {
	i := 0
	if i < len(h) && h[i] == '^' {
		i++
	}
	if i >= len(h) || h[i] != 'S' {
		return false
	}
	for i++; i < len(h); i++ {
		switch h[i] {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}
