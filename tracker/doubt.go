package tracker

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/pack"
	"github.com/tcpstate/tcpstate/reassembly"
)

// Where the wire lies (issue 14). A packet on the wire is not always what it claims: a
// middlebox forges RSTs in an endpoint's name (fingerprint.go); a socket dies of its timer
// without a packet (timers_death.go); a packet the tap saw has not yet reached its host
// (inflight.go); a client that lost its socket comes back on the same port (reconnect.go).
// connDoubt is what a connection keeps for that, beside its evidence.
type connDoubt struct {
	print [2]hostPrint // each endpoint's fingerprint, from the packets it certainly sent
	// forged: RSTs judged forged in an endpoint's name (the latest few).
	forged []forgedRST
	rtx    [2]rtxTrack // each side's unanswered retransmissions
	ka     [2]kaTrack  // each side's unanswered keepalive probes
	// lostRST: a RST (packet number) sent after unanswered probes or retransmissions, taken
	// as lost on the dead path; lostRSTProbes says after how many.
	lostRST       [2]uint64
	lostRSTProbes [2]int
	// reconnect: the client sent a SYN with a new ISN while the server still held this
	// connection open: its old socket is gone, and reconnectISN is the new connection's.
	reconnect    bool
	reconnectISN capture.Seq
	reconnectPkt uint64
	// probe: each side's latest new data (one past its end, when the tap saw it), waiting for
	// the peer's ACK; rttMin: the shortest tap-to-side round trip those pairs measured.
	probe  [2]rttProbe
	rttMin [2]time.Duration
	// finAck: each side's first segment that acknowledged the peer's FIN (its sequence number
	// and timestamp), to tell whether its own FIN, seen later, had left before it.
	finAck [2]segMark
	// synAckBy: when the peer's ACK that acknowledged each side's SYN passed the tap (the
	// side's synAcked rests on it arriving).
	synAckBy [2]capture.Time
	// synTS: the TSval of each side's first SYN (or SYN-ACK); echoFirst: the peer's answer
	// echoed it (TSecr), so the handshake round trip measured from that first transmission
	// holds even when it was retransmitted (RFC 7323 round-trip measurement).
	synTS     [2]uint32
	synTSSet  [2]bool
	echoFirst [2]bool
}

// noteSYNEcho records the first SYN's timestamp and whether the peer's answer echoed it.
func (d *connDoubt) noteSYNEcho(seg *capture.Segment, from Side) {
	if seg.Opts.Has&capture.HasTimestamps == 0 {
		return
	}
	if seg.Flags.Has(capture.SYN) && !d.synTSSet[from] {
		d.synTS[from], d.synTSSet[from] = seg.Opts.TSVal, true
	}
	if d.synTSSet[1-from] && !d.echoFirst[from] && seg.Flags.Has(capture.ACK) && seg.Opts.TSEcr == d.synTS[1-from] {
		d.echoFirst[from] = true
	}
}

// segMark is where a segment stood in its sender's sequence space and clock.
type segMark struct {
	set, hasTS bool
	// peerRetx: the peer's FIN had been retransmitted before this segment acknowledged it, so
	// an earlier copy may have arrived (this ACK answering the copy, its first one lost).
	peerRetx bool
	seq      capture.Seq
	tsval    uint32
}

// noteGotFIN records the segment from side from that first acknowledged the peer's FIN.
func (d *connDoubt) noteGotFIN(seg *capture.Segment, from Side, peerRetx bool) {
	d.finAck[from] = segMark{set: true, hasTS: seg.Opts.Has&capture.HasTimestamps != 0, peerRetx: peerRetx,
		seq: seg.Seq, tsval: seg.Opts.TSVal}
}

// finLeftFirst reports whether fin, side from's first FIN seen, had left before the segment
// that first acknowledged the peer's FIN although the tap saw it after: that segment's
// sequence number is already one past the FIN (or its timestamp later than the FIN's). The
// FIN was held or lost before the tap; what is seen now left first or is its retransmission.
// Its sender then closed first (FIN_WAIT_1 → CLOSING), not second (CLOSE_WAIT → LAST_ACK).
func (d *connDoubt) finLeftFirst(fin *capture.Segment, from Side) bool {
	m := &d.finAck[from]
	if !m.set || m.peerRetx {
		return false
	}
	end := capture.Seq(fin.Seq + capture.Seq(fin.PayloadLen)) // the FIN's own sequence number
	return capture.Seq(m.seq).GT(end) ||
		m.hasTS && fin.Opts.Has&capture.HasTimestamps != 0 && int32(m.tsval-fin.Opts.TSVal) > 0
}

type rttProbe struct {
	end capture.Seq
	t   capture.Time
}

// sampleRTT refines the tap-to-endpoint round trips with data/ACK pairs: the time from the
// tap seeing a side's new data to seeing the peer's first ACK covering it is the peer's round
// trip from the tap plus its ACK delay; the smallest such sample is the nearest to the truth.
// A retransmitted segment gives no sample (Karn).
func (d *connDoubt) sampleRTT(seg *capture.Segment, from Side, kind reassembly.Kind, ts capture.Time) {
	if p := &d.probe[1-from]; !p.t.IsZero() && seg.Flags.Has(capture.ACK) && capture.Seq(seg.Ack).GEQ(capture.Seq(p.end)) {
		if s := ts.Sub(p.t); s >= 0 && (d.rttMin[from] == 0 || s < d.rttMin[from]) {
			d.rttMin[from] = max(s, 1) // 0 means unmeasured
		}
		*p = rttProbe{}
	}
	switch {
	case kind == reassembly.New && seg.PayloadLen > 0:
		d.probe[from] = rttProbe{end: seg.Seq + capture.Seq(seg.PayloadLen), t: ts}
	case kind == reassembly.Retransmission:
		d.probe[from] = rttProbe{}
	}
}

// active reports whether anything here can change a state or a diagnosis.
func (d *connDoubt) active() bool {
	return len(d.forged) > 0 || d.rtx[0].n|d.rtx[1].n != 0 || d.ka[0].n|d.ka[1].n != 0 ||
		d.lostRST != [2]uint64{} || d.reconnect
}

// observe learns from one (non-duplicate) segment from side from: the sender's fingerprint,
// and whether its retransmissions and probes go unanswered.
func (d *connDoubt) observe(seg *capture.Segment, from Side, kind reassembly.Kind, ts capture.Time) {
	if seg.Flags.Has(capture.RST) {
		return // judged against the fingerprint in applyRST, learned from never
	}
	d.print[from].learn(seg)
	d.noteSYNEcho(seg, from)
	if len(d.forged) > 0 {
		d.heardFrom(from)
	}
	d.sampleRTT(seg, from, kind, ts)
	// Any packet from the peer answers this side: its probes were not in vain.
	d.rtx[1-from], d.ka[1-from] = rtxTrack{}, kaTrack{}
	r, k := &d.rtx[from], &d.ka[from]
	switch {
	case kind == reassembly.Keepalive:
		if k.n > 0 {
			k.gap = ts.Sub(k.last)
		}
		k.n, k.last, k.lastPkt = k.n+1, ts, seg.Packet
		*r = rtxTrack{}
	case kind == reassembly.Retransmission && (seg.PayloadLen > 0 || seg.Flags.Has(capture.FIN)) ||
		kind == reassembly.WindowProbe:
		// Zero-window probes back off and give up as retransmissions do (Linux: tcp_retries2).
		prev := r.last
		if prev.IsZero() {
			prev = r.sent
		}
		if !prev.IsZero() {
			r.gap = ts.Sub(prev)
		}
		if r.n == 0 {
			r.firstPkt = seg.Packet
		}
		r.n, r.last, r.lastPkt = r.n+1, ts, seg.Packet
		*k = kaTrack{}
	case seg.PayloadLen > 0 || seg.Flags.Has(capture.FIN|capture.SYN):
		*r, *k = rtxTrack{sent: ts}, kaTrack{}
	default:
		// A pure ACK or window update: the sender is alive and not waiting in silence.
		*r, *k = rtxTrack{}, kaTrack{}
	}
}

// pack visits every field (see pack.go); usually all zero, behind one bit.
func (d *connDoubt) pack(k *pack.Codec) {
	if !k.Block(k.Enc && !d.zero()) {
		if !k.Enc {
			*d = connDoubt{forged: pack.GrowTo(d.forged, 0)}
		}
		return
	}
	for i := range 2 {
		p := &d.print[i]
		pack.Uint(k, &p.n)
		pack.Uint(k, &p.ttl)
		pack.Uint(k, &p.ts)
		pack.Uint(k, &p.ipid)
		pack.Uint(k, &p.ipidUp)
		pack.Uint(k, &p.ipidZero)
		pack.Uint(k, &p.v4)
		k.Bool(&p.ttlMixed)
		r := &d.rtx[i]
		pack.Int(k, &r.n)
		pack.Stamp(k, &r.sent)
		pack.Stamp(k, &r.last)
		k.Dur(&r.gap)
		pack.Uint(k, &r.firstPkt)
		pack.Uint(k, &r.lastPkt)
		a := &d.ka[i]
		pack.Int(k, &a.n)
		pack.Stamp(k, &a.last)
		k.Dur(&a.gap)
		pack.Uint(k, &a.lastPkt)
		pack.Uint(k, &d.lostRST[i])
		pack.Int(k, &d.lostRSTProbes[i])
	}
	n := k.Len(len(d.forged))
	if !k.Enc {
		d.forged = pack.GrowTo(d.forged, n)
	}
	for i := range n {
		f := &d.forged[i]
		pack.Uint(k, &f.packet)
		pack.Uint(k, &f.named)
		f.why.pack(k)
		k.Bools(&f.accepted, &f.heard)
	}
	k.Bool(&d.reconnect)
	pack.Uint(k, &d.reconnectISN)
	pack.Uint(k, &d.reconnectPkt)
	for i := range 2 {
		pack.Stamp(k, &d.synAckBy[i])
		pack.Uint(k, &d.synTS[i])
		k.Bools(&d.synTSSet[i], &d.echoFirst[i])
		m := &d.finAck[i]
		k.Bools(&m.set, &m.hasTS, &m.peerRetx)
		pack.Uint(k, &m.seq)
		pack.Uint(k, &m.tsval)
		pack.Uint(k, &d.probe[i].end)
		pack.Stamp(k, &d.probe[i].t)
		k.Dur(&d.rttMin[i])
	}
}

func (d *connDoubt) zero() bool {
	return d.print == [2]hostPrint{} && len(d.forged) == 0 && d.rtx == [2]rtxTrack{} &&
		d.ka == [2]kaTrack{} && d.lostRST == [2]uint64{} && d.lostRSTProbes == [2]int{} &&
		!d.reconnect && d.reconnectISN == 0 && d.reconnectPkt == 0 &&
		d.probe == [2]rttProbe{} && d.rttMin == [2]time.Duration{} && d.finAck == [2]segMark{} &&
		d.synAckBy == [2]capture.Time{} && d.synTS == [2]uint32{} && d.synTSSet == [2]bool{} &&
		d.echoFirst == [2]bool{}
}

// rtxTrack follows one side's retransmissions of data (or FIN) that nothing answers.
type rtxTrack struct {
	n                 int           // retransmissions since the peer last spoke
	sent              capture.Time  // its latest new data or FIN
	last              capture.Time  // its latest retransmission
	gap               time.Duration // the backoff between its last two transmissions
	firstPkt, lastPkt uint64
}

// kaTrack follows one side's keepalive probes that nothing answers.
type kaTrack struct {
	n       int
	last    capture.Time
	gap     time.Duration
	lastPkt uint64
}
