package tracker

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// Diagnosis identifiers (SPEC: stable, scripts depend on them).
const (
	DiagSynUnanswered       = "syn-unanswered"
	DiagRefused             = "refused"
	DiagHandshakeIncomplete = "handshake-incomplete"
	DiagHalfClosed          = "half-closed"
	DiagFinUnacknowledged   = "fin-unacknowledged"
	DiagReset               = "reset"
	DiagRstIgnored          = "rst-ignored"
	DiagZeroWindow          = "zero-window"
	DiagMidstream           = "midstream"
	DiagPortReused          = "port-reused"
	DiagCaptureGap          = "capture-gap"
	DiagIdle                = "idle"
	// Issue 14: where the wire lies (fingerprint.go, timers_death.go).
	DiagMiddleboxReset        = "middlebox-reset"
	DiagRetransmissionTimeout = "retransmission-timeout"
	DiagKeepaliveTimeout      = "keepalive-timeout"
)

// AllDiagnoses lists every identifier, most serious first (the order of the table's summary).
var AllDiagnoses = []string{DiagRefused, DiagSynUnanswered, DiagHandshakeIncomplete, DiagReset,
	DiagMiddleboxReset, DiagRetransmissionTimeout, DiagKeepaliveTimeout, DiagHalfClosed, DiagFinUnacknowledged, DiagZeroWindow, DiagRstIgnored, DiagCaptureGap,
	DiagIdle, DiagPortReused, DiagMidstream}

// Problem reports whether a diagnosis is something wrong (rather than a note about the capture).
func Problem(id string) bool {
	switch id {
	case DiagMidstream, DiagPortReused, DiagCaptureGap, DiagIdle:
		return false
	}
	return true
}

// Diagnosis is one thing wrong with a connection, and whom it concerns.
type Diagnosis struct {
	ID     string
	Side   Side   // the endpoint it concerns
	Detail Detail // what a human reads about it, as data (report.AppendDetail writes it)
}

// diag is the diagnosis whose detail is d.
func diag(side Side, d Detail) Diagnosis { return Diagnosis{ID: d.Kind.ID(), Side: side, Detail: d} }

// idleAfter: an open connection silent (no data) this long before the end is idle.
const idleAfter = 60 * time.Second

func (c *Conn) addDiag(d Diagnosis) {
	for _, x := range c.Diagnoses {
		if x.ID == d.ID {
			return
		}
	}
	c.Diagnoses = append(c.Diagnoses, d)
}

// HasDiagnosis reports whether the connection carries diagnosis id.
func (c *Conn) HasDiagnosis(id string) bool {
	for _, x := range c.Diagnoses {
		if x.ID == id {
			return true
		}
	}
	return false
}

// diagnose names what is wrong with the connection as of now. Diagnoses from the flow's start
// (midstream, port-reused) are kept; the rest are recomputed.
func (c *Conn) diagnose(now time.Time, p *Profile) {
	keep := c.Diagnoses[:0]
	for _, d := range c.Diagnoses {
		if d.ID == DiagMidstream || d.ID == DiagPortReused {
			keep = append(keep, d)
		}
	}
	c.Diagnoses = keep
	cl, sv := &c.Client, &c.Server
	ce, se := &cl.ev, &sv.ev

	refused := false
	for _, n := range c.rstNotes {
		if n.from == ServerSide && n.accepted && ce.sentSYN && !ce.gotSYN && !se.sentSYNACK {
			refused = true
			c.addDiag(diag(ServerSide, Detail{Kind: DetailRefused}))
		}
	}
	switch {
	case refused:
	case ce.sentSYN && !se.sentSYNACK && !c.RoleInferred && !c.Midstream && !se.sentRST && c.DirPackets[ServerSide] == 0:
		if !ce.retransmitOverdue(ce.lastSYN, ce.prevSYNGap, now) && cl.State == SynSent {
			break // in progress: its retransmission is not due yet, an answer may still come
		}
		c.addDiag(diag(ServerSide, Detail{Kind: DetailSynUnanswered, N: [3]uint64{uint64(max(ce.nSYN, 1))}}))
	case se.sentSYNACK && !(se.synAcked && ce.gotSYN) && !se.sentRST && !ce.sentRST && !se.gotRST:
		who, what := ServerSide, DetailHandshakeNoFinalACK
		if se.synAcked {
			who, what = ClientSide, DetailHandshakeNoSynAckACK
		}
		inProgress := sv.State == SynReceived && !se.retransmitOverdue(se.lastSYN, se.prevSYNGap, now) ||
			cl.State == SynSent && !ce.retransmitOverdue(ce.lastSYN, ce.prevSYNGap, now)
		if (sv.State == SynReceived || cl.State == SynSent || c.Dir[0].Segments <= 1) && !inProgress {
			c.addDiag(diag(who, Detail{Kind: what}))
		}
	}

	for _, s := range []Side{ClientSide, ServerSide} {
		ep, peer := c.endpoint(s), c.endpoint(1-s)
		switch ep.State {
		case CloseWait:
			c.addDiag(diag(s, Detail{Kind: DetailCloseWait, D: ageOf(now, ep.Since)}))
		case FinWait2:
			if peer.State != CloseWait {
				c.addDiag(diag(1-s, Detail{Kind: DetailFinWait2, D: ageOf(now, ep.Since)}))
			}
		case FinWait1, Closing, LastAck:
			if !ep.ev.retransmitOverdue(ep.ev.lastFIN, ep.ev.prevFINGap, now) {
				break // in progress: the FIN's retransmission is not due yet, its ACK may still come
			}
			c.addDiag(diag(s, Detail{Kind: DetailFinUnacknowledged, State: ep.State, D: ageOf(now, ep.Since)}))
		}
	}

	for _, n := range c.rstNotes {
		if n.accepted && !refused && !c.doubt.isForged(n.packet) {
			c.addDiag(diag(n.from, Detail{Kind: DetailReset, N: [3]uint64{n.packet}}))
		}
	}
	if !refused && !c.HasDiagnosis(DiagReset) && (ce.sentRST || se.sentRST) {
		side := ClientSide
		if se.sentRST {
			side = ServerSide
		}
		c.addDiag(diag(side, Detail{Kind: DetailSentRST}))
	}
	for _, n := range c.rstNotes {
		if !n.accepted {
			c.addDiag(diag(1-n.from, Detail{Kind: DetailRstIgnored, Verdict: n.verdict, N: [3]uint64{n.packet, n.challenge}}))
		}
	}

	for _, s := range []Side{ClientSide, ServerSide} {
		d := &c.Dir[s]
		if d.ZeroWindows > 0 {
			still := uint64(0)
			if d.ZeroWindow {
				still = 1
			}
			c.addDiag(diag(s, Detail{Kind: DetailZeroWindow, N: [3]uint64{uint64(d.ZeroWindows), still}}))
		}
	}
	for _, s := range []Side{ClientSide, ServerSide} {
		if c.finInferred[s] {
			c.addDiag(diag(s, Detail{Kind: DetailFinNotCaptured}))
		}
		if m := c.Dir[s].MissedBytes; m > 0 {
			c.addDiag(diag(s, Detail{Kind: DetailMissedBytes, N: [3]uint64{uint64(m)}}))
		}
	}
	if cl.State.Open() && sv.State.Open() && cl.State != SynSent {
		last := c.lastData.Std()
		if last.IsZero() {
			last = c.FirstSeen
		}
		if now.Sub(last) >= idleAfter {
			c.addDiag(diag(BothSides, Detail{Kind: DetailIdle, D: ageOf(now, last)}))
		}
	}
	c.diagnoseDoubts(capture.TimeOf(now))
	c.markOneSided()
	c.EndedBy = c.ending()
	c.Zeek.SyncHistory()
	c.AsOf = now
}

// initialRTO is Linux's initial retransmission timeout (TCP_TIMEOUT_INIT, RFC 6298): the
// first retransmission of a SYN, SYN-ACK or FIN comes no sooner than this after the first
// transmission when nothing has measured the round trip. Later ones back off (twice the
// previous gap). rtoSlack allows for timer granularity and scheduling before a retransmission
// that did not come is taken as not coming.
const (
	initialRTO = time.Second
	rtoSlack   = 8 // a gap/rtoSlack margin
)

// retransmitOverdue reports whether, by now, the endpoint's next retransmission of what it last
// sent at last (a SYN, SYN-ACK or FIN; gap: between its last two transmissions, 0 after one)
// was due and did not come: until then, silence from the peer is a handshake or close still in
// progress, not a finding. When its retry budget is spent, the next "retransmission" is the
// stack giving up, at the same backed-off instant (handshakeDeadline).
func (e *evidence) retransmitOverdue(last capture.Time, gap time.Duration, now time.Time) bool {
	if last.IsZero() {
		return true // no time known: do not hold a finding back on a guess
	}
	next := initialRTO
	if gap > 0 {
		next = 2 * gap
	}
	return !capture.TimeOf(now).Before(last.Add(next + next/rtoSlack))
}

func (c *Conn) ending() Ending {
	ce, se := &c.Client.ev, &c.Server.ev
	switch {
	case ce.sentRST && se.sentRST:
		return EndedRSTBoth
	case ce.sentRST:
		return EndedRSTClient
	case se.sentRST:
		return EndedRSTServer
	case ce.sentFIN && se.sentFIN:
		return EndedFINBoth
	case ce.sentFIN:
		return EndedFINClient
	case se.sentFIN:
		return EndedFINServer
	}
	return EndedOpen
}

// mayInfer is false when none of inference's cases can hold, so that inference would say
// (false, ""): each of its conditions needs one of these. settle, which asks on every packet
// for both endpoints, tests it first (it inlines; most packets have nothing to infer). A case
// added to inference must be covered here (TestMayInferCoversInference).
func (c *Conn) mayInfer(side Side, viaTimer bool) bool {
	ep := c.endpoint(side)
	e := &ep.ev
	return viaTimer || e.midstream || c.RoleInferred || e.synAckLost|e.finAckLost != 0 ||
		e.synAckPending|e.finAckPending != 0 || c.finInferred[side&1] ||
		c.Dir[(side&1)^1].MissedBytes > 0 || e.gotRST
}

// inference says whether an endpoint's state is inferred rather than shown by the wire, and on
// what evidence.
func (c *Conn) inference(side Side, s State, viaTimer bool) (bool, Evidence) {
	ep := c.endpoint(side)
	switch {
	case viaTimer && ep.State == s && ep.Inferred:
		// The timer fired at an earlier evaluation (a Tick, a first Finish): keep what was said
		// then, when ep.State still named the state whose timer ran out.
		return true, ep.Evidence
	case viaTimer:
		return true, Evidence{Kind: EvidenceTimer, State: ep.State}
	case ep.ev.midstream:
		return true, Evidence{Kind: EvidenceMidstream}
	case c.RoleInferred && side == ClientSide && !ep.ev.gotSYN:
		return true, Evidence{Kind: EvidenceNoClientSYN}
	case ep.ev.synAckLost > 0 && ep.ev.synAcked && s == Established || ep.ev.finAckLost > 0 && ep.ev.finAcked:
		return true, Evidence{Kind: EvidenceAckLost}
	case ep.ev.pending():
		return true, Evidence{Kind: EvidenceAckPending}
	case c.finInferred[side]:
		return true, Evidence{Kind: EvidenceFinNotCaptured}
	case c.Dir[1-side].MissedBytes > 0:
		return true, Evidence{Kind: EvidencePeerMissed}
	case ep.ev.gotRST && !ep.ev.sentRST:
		return true, Evidence{Kind: EvidenceRSTDelivered}
	}
	return false, Evidence{}
}

// reason says, for the events output, why seg moved side from old to new (the event carries
// seg's flags and numbers; finSeq is the FIN an ACK covers, for ReasonFinAcked).
func (c *Conn) reason(seg *capture.Segment, side Side, old, new State) (r Reason, finSeq capture.Seq) {
	from := c.sideOf(seg)
	f := seg.Flags
	if from == side {
		peerFin := c.Dir[1-side].FinAckedBy(seg.Ack) && seg.Flags.Has(capture.ACK)
		switch {
		case f.Has(capture.RST):
			return ReasonSentRST, 0
		case f.Has(capture.SYN | capture.ACK):
			return ReasonSentSYNACK, 0
		case f.Has(capture.SYN):
			return ReasonSentSYN, 0
		case peerFin && (new == CloseWait || new == TimeWait || new == Closing || new == Closed):
			return ReasonAckedPeerFIN, 0
		case f.Has(capture.FIN) && (new == FinWait1 || new == LastAck || new == Closing):
			return ReasonSentFIN, 0
		case new == Established && old == SynSent:
			return ReasonAckedSynAck, 0
		case new == SynSent || new == SynReceived || new == FinWait1 || new == LastAck:
			return ReasonRetransmitted, 0
		}
		return ReasonSent, 0
	}
	pd := &c.Dir[side]
	switch {
	case f.Has(capture.RST):
		return ReasonAcceptedRST, 0
	case new == Established:
		return ReasonSynAcked, 0
	case pd.FinAckedBy(seg.Ack):
		return ReasonFinAcked, pd.FinSeq
	}
	return ReasonReceived, 0
}
