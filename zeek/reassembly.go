// The parts of Zeek's TCP_Reassembler that matter to conn.log: content gaps ('G', missed_bytes)
// and when a close is deferred until the data before it was delivered.

package zeek

// zreasm is the part of TCP_Reassembler that decides gaps and pending data: sequence numbers
// are relative (the first data byte after the SYN is 1).
type zreasm struct {
	lastReassem uint64 // everything below was delivered (or given up as a gap)
	trim        uint64 // everything below was acknowledged
	pending     []span // undelivered data above a hole, sorted and merged
	skip        bool   // skip_deliveries
	didEOF      bool
}

func (e *zendpoint) hasUndelivered() bool { return len(e.re.pending) > 0 }

// ackReceived is TCP_Reassembler::AckReceived for side s's data, at relative sequence seq.
func (r *zrow) ackReceived(s Side, seq uint64) {
	e := &r.ep[s&1]
	if e.finCnt > 0 && seq >= e.finSeq {
		seq = e.finSeq - 1
	}
	if seq <= e.re.trim {
		return
	}
	if seq > e.re.lastReassem {
		r.undelivered(s, seq)
	}
	e.re.trim = seq
	if e.eofMayBeDue() {
		r.checkEOF(s)
	}
}

// undelivered is TCP_Reassembler::Undelivered: the peer acknowledged data never seen.
func (r *zrow) undelivered(s Side, upTo uint64) {
	e := &r.ep[s&1]
	if upTo <= 2 && r.isPartial {
		return
	}
	re := &e.re
	if !re.skip {
		for len(re.pending) > 0 && re.pending[0].from < upTo {
			b := re.pending[0]
			r.gap(s, b.from-re.lastReassem)
			re.lastReassem = b.to
			re.pending = re.pending[1:]
		}
		if upTo > re.lastReassem {
			r.gap(s, upTo-re.lastReassem)
		}
	}
	if upTo > re.lastReassem {
		re.lastReassem = upTo
	}
	for len(re.pending) > 0 && re.pending[0].to <= re.lastReassem {
		re.pending = re.pending[1:]
	}
}

// gap is TCP_Reassembler::Gap: 'G' and missed_bytes, for a cleanly established connection.
func (r *zrow) gap(s Side, n uint64) {
	if isClean(&r.ep[s&1]) && isClean(&r.ep[(s&1)^1]) {
		if r.ep[s].gap.hit() {
			r.letter(s, 'G')
		}
		r.missed += n
	}
}

// dataSent is TCP_Reassembler::DataSent (with NewBlock and BlockInserted).
func (r *zrow) dataSent(s Side, seq, n uint64) {
	e := &r.ep[s&1]
	re := &e.re
	if re.skip {
		return
	}
	ack := e.relSeqSpace(e.ackSeq, e.ackWraps)
	upper := seq + n
	if seq < ack {
		if upper <= ack {
			return
		}
		seq = ack
	}
	if upper <= re.trim {
		return
	}
	if seq < re.trim {
		seq = re.trim
	}
	switch {
	case seq <= re.lastReassem && upper > re.lastReassem:
		re.lastReassem = upper
		for len(re.pending) > 0 && re.pending[0].from <= re.lastReassem {
			if re.pending[0].to > re.lastReassem {
				re.lastReassem = re.pending[0].to
			}
			re.pending = re.pending[1:]
		}
		if e.noDataAcked() && e.size(&r.ep[(s&1)^1]) > zeekMaxInitialWindow && re.lastReassem > re.trim {
			re.trim = re.lastReassem
		}
	case seq > re.lastReassem:
		re.pending = addSpan(re.pending, span{seq, upper})
	}
	if e.noDataAcked() && len(re.pending) > 0 && re.pending[len(re.pending)-1].to-re.lastReassem > zeekMaxAboveHole {
		re.pending = nil
		re.skip = true
	}
	// Buffered: delivered but not yet acknowledged, and waiting above a hole.
	var buffered uint64
	if re.lastReassem > re.trim {
		buffered = re.lastReassem - re.trim
	}
	for _, b := range re.pending {
		buffered += b.to - b.from
	}
	if buffered > zeekExcessiveData {
		re.pending = nil
		re.skip = true
	}
}

// addSpan inserts b into the sorted, merged list l (bounded: the oldest holes are forgotten).
func addSpan(l []span, b span) []span {
	out := make([]span, 0, len(l)+1)
	placed := false
	for _, x := range l {
		switch {
		case x.to < b.from:
			out = append(out, x)
		case b.to < x.from:
			if !placed {
				out = append(out, b)
				placed = true
			}
			out = append(out, x)
		default:
			b = span{min(b.from, x.from), max(b.to, x.to)}
		}
	}
	if !placed {
		out = append(out, b)
	}
	if len(out) > 64 {
		out = out[len(out)-64:]
	}
	return out
}

// dataPending is TCP_Reassembler::DataPending for side s.
func (r *zrow) dataPending(s Side) bool {
	e, peer := &r.ep[s&1], &r.ep[(s&1)^1]
	if e.re.skip {
		return false
	}
	delivered := uint64(e.startSeq) + e.re.lastReassem
	last := uint64(e.seqWraps)<<32 + uint64(e.lastSeq)
	if last < delivered {
		return false
	}
	if delivered != last-1 && delivered != last {
		return true
	}
	return e.state != Reset && peer.hasUndelivered()
}

// eofMayBeDue is the test checkEOF starts with, but for dataPending: if false, checkEOF does
// nothing. It inlines.
func (e *zendpoint) eofMayBeDue() bool {
	return !e.re.didEOF && (e.finCnt > 0 || e.state == Closed || e.state == Reset)
}

// checkEOF is TCP_Reassembler::CheckEOF with TCPSessionAdapter::EndpointEOF.
func (r *zrow) checkEOF(s Side) {
	e := &r.ep[s&1]
	if e.re.didEOF || !(e.finCnt > 0 || e.state == Closed || e.state == Reset) || r.dataPending(s) {
		return
	}
	e.re.didEOF = true
	if r.closeDeferred {
		r.connectionClosed(s, r.deferredGen)
		r.closeDeferred = false
	}
}
