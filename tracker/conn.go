package tracker

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/reassembly"
	"github.com/tcpstate/tcpstate/zeek"
)

// Side names one endpoint of a connection.
type Side uint8

const (
	ClientSide Side = iota
	ServerSide
	BothSides
)

func (s Side) String() string {
	switch s {
	case ClientSide:
		return "client"
	case ServerSide:
		return "server"
	}
	return "both"
}

// Conn is one connection instance: a 4-tuple from a SYN (or its first packet) to its end. A
// 4-tuple reused after a close is a new Conn.
type Conn struct {
	ID     uint64
	Client Endpoint // sent the first SYN (or guessed: RoleInferred)
	Server Endpoint

	FirstSeen, LastSeen time.Time
	Packets             uint64 // both directions, duplicates excluded
	Bytes               uint64 // TCP payload bytes, both directions, each byte counted once
	DirPackets          [2]uint64
	DirIPBytes          [2]uint64
	Duplicates          uint64

	// Midstream: the handshake was not captured. RoleInferred: client and server were guessed.
	Midstream    bool
	RoleInferred bool
	// Reuses is the ID of the instance this one replaced on the same 4-tuple (0: none).
	Reuses    uint64
	ReusedBy  uint64
	Diagnoses []Diagnosis
	Dir       [2]reassembly.Direction // [0] client→server, [1] server→client
	// Zeek is the connection's Zeek view: kept and packed with it, fed by the flow table's
	// segment observer; the tracker never reads or writes it.
	Zeek      zeek.View
	Tunnel    capture.TunnelKind
	TunnelSrc string
	TunnelDst string
	EndedBy   Ending // how it ended: by a FIN or RST, from which side

	rtt         [2]time.Duration // tap↔endpoint round trip, measured on the handshake
	finInferred [2]bool          // a side's FIN was inferred from the peer's ACK, never captured
	synTime     [2]capture.Time
	rstNotes    []rstNote
	zwSince     [2]capture.Time // when each side's zero window began (unset: none now)
	zwLong      [2]time.Duration
	lastData    capture.Time
	done        bool
	doubt       connDoubt // where the wire may lie: fingerprints, silent deaths (issue 14)

	// Evicted: a full table (--max-flows) dropped it before it finished; it is reported as it
	// stood then. TimedOut: silent for the idle timeout of a streaming run, so reported and
	// forgotten as it stood then (see StreamConfig).
	Evicted  bool
	TimedOut bool
	// AsOf is the instant its states and diagnoses were last evaluated: the end of the input
	// (or --at), the latest Tick, or when a streaming run finished it early.
	AsOf time.Time
}

type rstNote struct {
	from     Side
	accepted bool
	verdict  Verdict
	t        capture.Time
	packet   uint64
	// An in-window but inexact RST draws a challenge ACK from its receiver (RFC 5961 §3.2):
	// a pure ACK carrying the receiver's RCV.NXT. wantChallenge is that number; challenge the
	// packet that answered it.
	wantChallenge bool
	rcvNxt        capture.Seq
	challenge     uint64
}

// endpoint returns the endpoint on side s.
func (c *Conn) endpoint(s Side) *Endpoint {
	if s == ClientSide {
		return &c.Client
	}
	return &c.Server
}

// sideOf says which endpoint sent seg.
func (c *Conn) sideOf(seg *capture.Segment) Side {
	if seg.Src == c.Client.Addr {
		return ClientSide
	}
	return ServerSide
}

// slack is how long after an ACK towards side s that side's own retransmission still proves
// nothing: the ACK may have crossed it on the way (the tap-to-endpoint round trip).
func (c *Conn) slack(s Side) time.Duration {
	return c.rtt[s] + time.Millisecond
}

// apply feeds one segment into the connection's evidence. It returns the segment's kind.
func (c *Conn) apply(seg *capture.Segment) reassembly.Kind {
	if seg.Flags&(capture.SYN|capture.ACK|capture.RST) == capture.SYN && c.isReconnectSYN(seg) {
		return c.applyReconnect(seg) // a reconnect the old connection answers (reconnect.go)
	}
	from := c.sideOf(seg)
	to := 1 - from
	s, r := c.endpoint(from), c.endpoint(to)
	sd, rd := &c.Dir[from], &c.Dir[to]
	kind := sd.Observe(seg, rd)
	if kind == reassembly.Duplicate {
		c.Duplicates++
		return kind
	}
	t := seg.Time
	ts := capture.TimeOf(t)
	c.LastSeen = t
	c.Packets++
	c.DirPackets[from]++
	c.DirIPBytes[from] += uint64(seg.IPLen)
	if kind == reassembly.New || kind == reassembly.Gap || kind == reassembly.OutOfOrder {
		c.Bytes += uint64(seg.PayloadLen)
	}
	if seg.PayloadLen > 0 && kind != reassembly.Keepalive && kind != reassembly.WindowProbe {
		c.lastData = ts
	}
	c.doubt.observe(seg, from, kind, ts)
	f := seg.Flags
	ack := seg.Ack

	// Round trips between the tap and each endpoint, from the handshake.
	if f.Has(capture.SYN) && !f.Has(capture.ACK) && c.synTime[from].IsZero() {
		c.synTime[from] = ts
	}
	if f.Has(capture.SYN|capture.ACK) && c.rtt[from] == 0 && !c.synTime[to].IsZero() {
		c.rtt[from] = ts.Sub(c.synTime[to])
		c.synTime[from] = ts
	}
	if !f.Has(capture.SYN) && f.Has(capture.ACK) && c.rtt[from] == 0 && !c.synTime[to].IsZero() && rd.SynAckedBy(ack) {
		c.rtt[from] = ts.Sub(c.synTime[to])
	}

	if f.Has(capture.RST) {
		c.applyRST(seg, ts, from)
		return kind
	}

	c.noteChallengeACK(seg, ts, from)

	// A live packet from an endpoint that supposedly accepted a RST: the RST never took.
	if s.ev.gotRST && ts.Sub(s.ev.tReset) > c.slack(from) {
		s.ev.gotRST = false
		c.noteRSTIgnored(from)
	}

	// A FIN the capture missed, inferred from an ACK one past its sender's last byte; or
	// withdrawn, when data followed it after all.
	for side := ClientSide; side <= ServerSide; side++ {
		d, ep := &c.Dir[side], c.endpoint(side)
		if d.FinInferred && !ep.ev.sentFIN {
			ep.ev.sentFIN, ep.ev.tSentFIN, ep.ev.finPassive = true, ts, ep.ev.gotFIN
			c.finInferred[side] = true
		} else if c.finInferred[side] && !d.FinSeen {
			ep.ev.sentFIN, c.finInferred[side] = false, false
		}
	}

	// What the sender proves it received: its ACK covers the peer's SYN and FIN.
	if f.Has(capture.ACK) {
		// Nothing below changes the peer's direction: whether the ACK covers its SYN and FIN
		// is worked out once.
		coversSYN, coversFIN := rd.SynAckedBy(ack), rd.FinAckedBy(ack)
		if coversSYN && !s.ev.gotSYN {
			s.ev.gotSYN = true
			if s.ev.sentSYN && !f.Has(capture.SYN) {
				// An active opener acknowledging the SYN-ACK got it, and with it the ACK of its SYN.
				s.ev.synAcked, s.ev.tSynAcked = true, ts
			}
		}
		if coversFIN && !s.ev.gotFIN {
			s.ev.gotFIN, s.ev.tGotFIN = true, ts
			c.doubt.noteGotFIN(seg, from, r.ev.lastFIN != r.ev.tSentFIN)
		}
		// What the receiver is taken to have received: this ACK of its SYN and FIN.
		if coversSYN {
			r.ev.tSynAckLast = ts
		}
		if coversFIN {
			r.ev.tFinAckLast = ts
		}
		if coversSYN && (r.ev.sentSYN || r.ev.sentSYNACK) && !r.ev.synAcked {
			if r.ev.synAckLost < 2 {
				r.ev.synAcked, r.ev.tSynAcked = true, ts
				c.doubt.synAckBy[to] = ts // the peer's ACK, assumed delivered (inflight)
			} else if r.ev.synAckPending.IsZero() {
				r.ev.synAckPending = ts
			}
		}
		if coversFIN && !r.ev.finAcked {
			if r.ev.finAckLost < 2 {
				r.ev.finAcked, r.ev.tFinAcked = true, ts
			} else if r.ev.finAckPending.IsZero() {
				r.ev.finAckPending, r.ev.tFinAcked = ts, ts
			}
		}
	}

	// A stack in SYN_RECEIVED sends nothing but SYN-ACKs: anything else from an endpoint that
	// answered a SYN shows it got the ACK of its SYN.
	if !f.Has(capture.SYN) && f.Has(capture.ACK) && s.ev.sentSYNACK && !s.ev.synAcked && s.ev.gotSYN {
		s.ev.synAcked, s.ev.tSynAcked = true, ts
	}

	// What the sender sent.
	if f.Has(capture.SYN) {
		c.applySYN(seg, ts, from, kind)
	}
	if f.Has(capture.FIN) {
		if !s.ev.sentFIN {
			s.ev.sentFIN, s.ev.tSentFIN = true, ts
			s.ev.finPassive = s.ev.gotFIN
			if s.ev.gotFIN && c.doubt.finLeftFirst(seg, from) { // seen late (doubt.go)
				s.ev.finPassive, s.ev.tSentFIN = false, s.ev.tGotFIN
			}
			if !s.ev.gotSYN && !s.ev.midstream && s.ev.sentSYN {
				// FIN before the SYN-ACK arrived (an application closing in SYN_SENT sends no
				// FIN on Linux, but other stacks and crafted traffic do): treat as synchronized.
				s.ev.gotSYN = true
			}
			s.ev.lastFIN = ts
		} else if kind == reassembly.Retransmission {
			s.ev.prevFINGap, s.ev.lastFIN = ts.Sub(s.ev.lastFIN), ts
			if (s.ev.finAcked || !s.ev.finAckPending.IsZero()) && ts.Sub(s.ev.tFinAckLast) > c.slack(from) {
				// FIN retransmitted well after the peer's latest ACK of it: that ACK never arrived.
				s.ev.finAcked, s.ev.finAckPending = false, 0
				s.ev.finAckLost++
			}
		}
	}
	return kind
}

func (c *Conn) applySYN(seg *capture.Segment, t capture.Time, from Side, kind reassembly.Kind) {
	s := c.endpoint(from)
	if seg.Flags.Has(capture.ACK) {
		s.ev.sentSYNACK = true
		s.ev.gotSYN = true
	} else {
		s.ev.sentSYN = true
	}
	if kind == reassembly.Retransmission {
		s.ev.nSYN++
		s.ev.prevSYNGap = t.Sub(s.ev.lastSYN)
		s.ev.lastSYN = t
		lost := (s.ev.synAcked && !s.ev.tSynAcked.IsZero() || !s.ev.synAckPending.IsZero()) &&
			t.Sub(s.ev.tSynAckLast) > c.slack(from)
		if lost && !s.ev.midstream {
			// SYN or SYN-ACK sent again well after the peer's latest ACK of it: that ACK was lost.
			s.ev.synAcked, s.ev.synAckPending = false, 0
			s.ev.synAckLost++
			if !seg.Flags.Has(capture.ACK) {
				s.ev.gotSYN = false
			}
		}
		return
	}
	if s.ev.firstSYN.IsZero() {
		s.ev.firstSYN = t
	}
	s.ev.lastSYN = t
	s.ev.nSYN = 1
}

// applyRST decides what a RST did: the sender is gone; the receiver accepted it only if its
// sequence number would pass the receiving stack's checks (RFC 5961 as Linux applies it).
func (c *Conn) applyRST(seg *capture.Segment, ts capture.Time, from Side) {
	to := 1 - from
	s, r := c.endpoint(from), c.endpoint(to)
	sd, rd := &c.Dir[from], &c.Dir[to]
	seq := seg.Seq

	// The sender. A stack in SYN_SENT answering an unacceptable SYN-ACK sends a RST with
	// seq = that SYN-ACK's ACK and stays in SYN_SENT.
	// A RST from an endpoint that never opened (a closed port, a stale segment) says only that
	// it has no socket: nothing to record against its later life on this 4-tuple.
	// A RST whose sequence number lies outside what its supposed sender has sent and had
	// acknowledged was not written by that stack: it was forged or injected on the path.
	inSynSent := s.ev.sentSYN && !s.ev.gotSYN && !s.ev.midstream
	opened := s.ev.sentSYN || s.ev.sentSYNACK || s.ev.midstream
	lo := sd.Next
	if sd.AckedSet && sd.Acked.LT(lo) {
		lo = sd.Acked
	}
	ownSeq := !sd.Started || sd.Segments <= 1 || (seq.GEQ(lo-1) && seq.LEQ(sd.Next))
	// A RST that does not fit the fingerprint of the endpoint it names was forged on the path:
	// it still acts on its receiver, but proves nothing about that endpoint (fingerprint.go).
	forged, misfits := c.judgeRST(seg, from)
	if opened && ownSeq && !forged && !(inSynSent && sd.SynSeen && seq != sd.ISN+1) && !s.ev.sentRST {
		s.ev.sentRST, s.ev.tReset = true, ts
	}

	// The receiver.
	state := r.ev.derive(ts)
	accepted, verdict := false, VerdictNone
	switch {
	case state == Closed && !r.ev.midstream && !(r.ev.sentSYN || r.ev.sentSYNACK):
		// Nothing there to reset (e.g. the receiver never spoke): the sender's side is all.
		accepted, verdict = true, VerdictNoSocket
	case state == SynSent:
		accepted = seg.Flags.Has(capture.ACK) && seg.Ack == rd.ISN+1
		verdict = VerdictAckMismatch
		if accepted {
			verdict = VerdictAnswersSYN
		}
	case state == Closed:
		accepted, verdict = true, VerdictAlreadyClosed
	case !sd.Started || sd.Segments <= 1 && !sd.SynSeen:
		// The sender's sequence space is unknown (its RST is the first we see of it).
		accepted, verdict = true, VerdictSeqUnknown
	default:
		accepted, verdict = c.rstInWindow(seq, from, state)
	}
	note := rstNote{from: from, accepted: accepted, verdict: verdict, t: ts, packet: seg.Packet}
	if !accepted && verdict == VerdictChallenge {
		note.wantChallenge, note.rcvNxt = true, sd.Next
		if sd.AckedSet && sd.Acked.LT(sd.Next) {
			note.rcvNxt = sd.Acked
		}
	}
	c.rstNotes = append(c.rstNotes[:min(len(c.rstNotes), 7)], note)
	if forged {
		c.noteForged(seg, from, misfits, accepted)
	}
	if dead, n := c.doubt.deadPath(from); accepted && dead && !forged {
		// Its stack's last word after unanswered probes: lost on the dead path, most likely.
		c.doubt.lostRST[from], c.doubt.lostRSTProbes[from] = seg.Packet, n
		accepted = false
	}
	if accepted && !r.ev.gotRST {
		r.ev.gotRST, r.ev.tReset = true, ts
	}
}

// rstInWindow applies the receiver's sequence check to a RST from side from.
func (c *Conn) rstInWindow(seq capture.Seq, from Side, state State) (bool, Verdict) {
	sd := &c.Dir[from]   // what the RST sender sent: the receiver's rcv_nxt is its Next
	rd := &c.Dir[1-from] // the receiver's own direction: its advertised window
	rcvNxt := sd.Next
	if seq == rcvNxt || (sd.AckedSet && seq == sd.Acked) {
		return true, VerdictExact
	}
	if (state == CloseWait || state == LastAck || state == Closing) && seq == rcvNxt-1 {
		return true, VerdictOneBelow
	}
	if state == TimeWait {
		return false, VerdictTimeWait
	}
	lo := rcvNxt
	if sd.AckedSet && sd.Acked.LT(lo) {
		lo = sd.Acked
	}
	win := rd.Window
	if state == SynReceived {
		if seq.InWindow(sd.ISN+1, max(win, 1)) {
			return true, VerdictHalfOpen
		}
		return false, VerdictOutOfWindow
	}
	if win > 0 && seq.InWindow(lo, win) {
		return false, VerdictChallenge
	}
	return false, VerdictOutOfWindow
}

// noteChallengeACK recognises the challenge ACK a receiver sends after an in-window RST it
// did not accept: a pure ACK from it, at its RCV.NXT, soon after the RST.
func (c *Conn) noteChallengeACK(seg *capture.Segment, t capture.Time, from Side) {
	if seg.PayloadLen != 0 || seg.Flags&(capture.SYN|capture.FIN|capture.RST) != 0 || !seg.Flags.Has(capture.ACK) {
		return
	}
	for i := len(c.rstNotes) - 1; i >= 0; i-- {
		n := &c.rstNotes[i]
		if n.from == from || !n.wantChallenge || n.challenge != 0 {
			continue
		}
		ack := seg.Ack
		if ack.GEQ(n.rcvNxt) && ack.LEQ(c.Dir[1-from].Next) && t.Sub(n.t) < time.Second {
			n.challenge = seg.Packet
			n.verdict = VerdictChallenged // the challenge is packet n.challenge
		}
		return
	}
}

func (c *Conn) noteRSTIgnored(side Side) {
	for i := len(c.rstNotes) - 1; i >= 0; i-- {
		n := &c.rstNotes[i]
		if n.from != side && n.accepted {
			n.accepted = false
			n.verdict = VerdictLost
			return
		}
	}
}

// Summary is a copy of what c reports (ID, endpoints, counters, diagnoses), without the
// machinery that tracked it, for keeping every connection of a long capture at little cost.
func (c *Conn) Summary() *Conn {
	return &Conn{ID: c.ID, Client: c.Client, Server: c.Server, FirstSeen: c.FirstSeen, LastSeen: c.LastSeen,
		Packets: c.Packets, Bytes: c.Bytes, DirPackets: c.DirPackets, DirIPBytes: c.DirIPBytes,
		Duplicates: c.Duplicates, Midstream: c.Midstream, RoleInferred: c.RoleInferred, Reuses: c.Reuses,
		ReusedBy: c.ReusedBy, Diagnoses: append([]Diagnosis(nil), c.Diagnoses...), Tunnel: c.Tunnel,
		TunnelSrc: c.TunnelSrc, TunnelDst: c.TunnelDst, EndedBy: c.EndedBy, Evicted: c.Evicted,
		TimedOut: c.TimedOut, AsOf: c.AsOf}
}
