package tracker

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// Sockets that die without a packet, and packets that have not arrived yet.
//
// A stack with unacknowledged data retransmits it with exponential backoff, and keepalive
// probes come at a fixed interval; as long as it lives it keeps doing so. When the silence
// after its last retransmission (probe) runs well past the next one due, given the backoff
// seen, its stack has given up (Linux tcp_retries2, Windows TcpMaxDataRetransmissions,
// TCP_KEEPCNT): its socket is CLOSED, and the peer, which heard nothing, stays as it was
// (half-open). The wire shows no packet for it: the state is inferred.

const (
	// rtoMax caps a retransmission backoff (Linux TCP_RTO_MAX).
	rtoMax = 120 * time.Second
	// pastDue: the silence must last this much longer than the next retransmission's or
	// probe's due time (timer slack is a few percent; a late timer is not a dead one).
	pastDueRtx = 1.2
)

// diedAt reports when side's stack gave up in silence by now (zero: it did not, as far as the
// wire shows), and how (DiagRetransmissionTimeout or DiagKeepaliveTimeout).
func (c *Conn) diedAt(side Side, now capture.Time) (capture.Time, string) {
	d := &c.doubt
	if r := &d.rtx[side]; r.n >= 2 && r.gap > 0 {
		due := min(2*r.gap, rtoMax)
		if !now.Before(r.last.Add(time.Duration(float64(due) * pastDueRtx))) {
			return r.last.Add(due), DiagRetransmissionTimeout
		}
	}
	if k := &d.ka[side]; k.n >= 2 && k.gap > 0 {
		// Keepalive probes come at a fixed interval; probes that back off (zero-window probes
		// taken for keepalives) double it: past twice the interval either has given up.
		if !now.Before(k.last.Add(time.Duration(float64(2*k.gap) * pastDueRtx))) {
			return k.last.Add(k.gap), DiagKeepaliveTimeout
		}
	}
	return 0, ""
}

// deadPath reports whether a RST from side from follows probes or retransmissions of its that
// the peer never answered: the path towards the peer was not delivering, so the RST, the
// stack's last word as it gives up, is not taken as delivered either.
func (d *connDoubt) deadPath(from Side) (bool, int) {
	if k := d.ka[from].n; k >= 1 {
		return true, k
	}
	if r := d.rtx[from].n; r >= 2 {
		return true, r
	}
	return false, 0
}

// minOneWay: below this one-way time from the tap, a packet is at its host as soon as the tap
// saw it (the tap is on the same segment or the host itself).
const minOneWay = time.Millisecond

// oneWay is the time a packet takes from the tap to side's host: half the round trip measured
// on the handshake (SYN → SYN-ACK for the server, SYN-ACK → ACK for the client). As in Karn's
// algorithm, a sample over a retransmitted SYN or SYN-ACK is ambiguous (which copy did the
// answer answer?): then the time is unknown (0), and packets are taken as arrived.
// Data/ACK pairs refine it (sampleRTT): the shortest round trip measured either way counts.
func (c *Conn) oneWay(side Side) time.Duration {
	rtt := c.rtt[side]
	if c.endpoint(1-side).ev.nSYN > 1 && !c.doubt.echoFirst[side] {
		// The SYN (server's sample) or SYN-ACK sender retried, and the answer's timestamp
		// does not show it answered the first transmission.
		rtt = 0
	}
	if m := c.doubt.rttMin[side]; m > 0 && (rtt == 0 || m < rtt) {
		rtt = m
	}
	return rtt / 2
}

// endGrace: at the end of the input (rather than at --at), the instant is taken as this long
// after the last packet: a capture is stopped, and its states looked at, some time after its
// last packet. A packet seen at the very end is still in flight only towards an endpoint
// farther than that from the tap.
const endGrace = 100 * time.Millisecond

// inFlight reports whether a packet seen at t towards side had not reached it by now.
func (c *Conn) inFlight(side Side, t, now capture.Time) bool {
	ow := c.oneWay(side)
	return ow >= minOneWay && !t.IsZero() && !now.Before(t) && now.Sub(t) < ow
}

// reconsider revises side's state, as derived from the evidence at now, for what the wire
// hides: a stack that gave up in silence, packets towards it still on their way at flightAt
// (set only when evaluating at the end or --at; unseen: only that changed the state, which
// is no event: the packet's effect is still to come), a RST forged in its name or lost on a dead path. why,
// when set, is the evidence for the revised (inferred) state.
func (c *Conn) reconsider(side Side, at, flightAt capture.Time, p *Profile, lastPacket capture.Time,
	s State, since capture.Time, viaTimer bool, deadline capture.Time) (State, capture.Time, bool, capture.Time, Evidence, bool) {
	ep := c.endpoint(side)
	why, unseen := Evidence{}, false
	if flightAt != 0 {
		e := &ep.ev
		masked := false
		saved := *e
		if e.synAcked && e.tSynAcked == c.doubt.synAckBy[side] && c.inFlight(side, e.tSynAcked, flightAt) {
			e.synAcked, masked = false, true
		}
		if e.finAcked && c.inFlight(side, e.tFinAcked, flightAt) {
			e.finAcked, masked = false, true
		}
		if e.gotRST && !e.sentRST && c.inFlight(side, e.tReset, flightAt) {
			e.gotRST, masked = false, true
		}
		// The converse: the peer's FIN, seen more than the one-way time ago, has arrived
		// though its ACK is not back yet (it will be a round trip after the FIN, not before).
		arrived := false
		if pe := &c.endpoint(1 - side).ev; pe.sentFIN && !e.gotFIN && !c.finInferred[1-side] {
			ow := c.oneWay(side)
			if ow >= minOneWay && !flightAt.Before(pe.tSentFIN.Add(ow)) && flightAt.Before(pe.lastFIN.Add(2*ow+c.slack(side))) {
				e.gotFIN, e.tGotFIN, masked, arrived = true, pe.tSentFIN.Add(ow), true, true
			}
		}
		if masked {
			s2, since2, via2, dl2 := ep.evaluateTimer(at, p, lastPacket)
			*e = saved
			if s2 != s {
				s, since, viaTimer, deadline, unseen = s2, since2, via2, dl2, true
				why = Evidence{Kind: EvidenceInFlight, D: c.oneWay(side)}
				if arrived {
					why.Kind = EvidenceFINArrived
				}
			}
		}
	}
	if s.Open() {
		if t, how := c.diedAt(side, at); t != 0 {
			what := EvidenceRtxGaveUp
			if how == DiagKeepaliveTimeout {
				what = EvidenceKeepaliveGaveUp
			}
			return Closed, t, true, 0, Evidence{Kind: what}, false
		}
	}
	if why.Kind == EvidenceNone && s.Open() {
		if n, last := c.unanswered(side, at); n > 0 {
			why = Evidence{Kind: EvidenceUnanswered, Count: uint32(n), Packet: last}
		} else if f := c.doubt.forgedAs(side); f != nil && !ep.ev.sentRST {
			why = Evidence{Kind: EvidenceForgedAs, Packet: f.packet, Misfit: f.why}
		} else if n := c.doubt.lostRST[1-side]; n != 0 && !ep.ev.gotRST {
			why = Evidence{Kind: EvidenceLostRST, Packet: n, Count: uint32(c.doubt.lostRSTProbes[1-side])}
		}
	}
	return s, since, viaTimer, deadline, why, unseen
}

// diagnoseDoubts adds the diagnoses of issue 14: middlebox-reset, retransmission-timeout,
// keepalive-timeout.
func (c *Conn) diagnoseDoubts(now capture.Time) {
	d := &c.doubt
	for _, f := range d.forged {
		kind := DetailForgedReset
		if !f.accepted {
			kind = DetailForgedIgnored
		}
		c.addDiag(diag(1-f.named, Detail{Kind: kind, State: c.endpoint(f.named).State, Misfit: f.why,
			N: [3]uint64{f.packet}}))
	}
	for side := ClientSide; side <= ServerSide; side++ {
		ep, peer := c.endpoint(side), c.endpoint(1-side)
		if t, how := c.diedAt(side, now); t != 0 && ep.State == Closed {
			if how == DiagRetransmissionTimeout {
				r := &d.rtx[side]
				c.addDiag(diag(side, Detail{Kind: DetailRtxTimeout, State: peer.State,
					N: [3]uint64{uint64(r.n), r.firstPkt, r.lastPkt}, D: r.gap, At: capture.Time(t)}))
			} else {
				k := &d.ka[side]
				c.addDiag(diag(side, Detail{Kind: DetailKeepaliveTimeout, State: peer.State,
					N: [3]uint64{uint64(k.n), k.lastPkt}, D: k.gap, At: capture.Time(t)}))
			}
		}
		if n := d.lostRST[side]; n != 0 {
			kind := DetailRtxLostRST
			if d.ka[side].n > 0 {
				kind = DetailKeepaliveLostRST
			}
			c.addDiag(diag(side, Detail{Kind: kind, State: peer.State, N: [3]uint64{uint64(d.lostRSTProbes[side]), n}}))
		}
	}
}

// unanswered reports, for a side not (yet) taken as dead, how many of its retransmissions or
// probes went unanswered when its silence since the last has outlasted the last backoff: it
// may have given up already (a persist timer gives up at its next due time, which backs
// off), so its state is inferred. n is 0 otherwise.
func (c *Conn) unanswered(side Side, now capture.Time) (n int, last uint64) {
	d := &c.doubt
	if r := &d.rtx[side]; r.n >= 2 && r.gap > 0 && !now.Before(r.last.Add(r.gap)) {
		return r.n, r.lastPkt
	}
	if k := &d.ka[side]; k.n >= 2 && k.gap > 0 && !now.Before(k.last.Add(k.gap)) {
		return k.n, k.lastPkt
	}
	return 0, 0
}
