package tracker

import (
	"fmt"
	"net/netip"
	"strconv"
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
	Detail string // one line for a human
}

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
func (c *Conn) diagnose(now time.Time, p *Profile, dc *detailCache) {
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
			c.addDiag(Diagnosis{ID: DiagRefused, Side: ServerSide,
				Detail: dc.refused(sv.Addr)})
		}
	}
	switch {
	case refused:
	case ce.sentSYN && !se.sentSYNACK && !c.RoleInferred && !c.Midstream && !se.sentRST && c.DirPackets[ServerSide] == 0:
		if !ce.retransmitOverdue(ce.lastSYN, ce.prevSYNGap, now) && cl.State == SynSent {
			break // in progress: its retransmission is not due yet, an answer may still come
		}
		c.addDiag(Diagnosis{ID: DiagSynUnanswered, Side: ServerSide,
			Detail: dc.synUnanswered(max(ce.nSYN, 1), sv.Addr)})
	case se.sentSYNACK && !(se.synAcked && ce.gotSYN) && !se.sentRST && !ce.sentRST && !se.gotRST:
		who, what := ServerSide, "the server sent SYN-ACK but never got the final ACK"
		if se.synAcked {
			who, what = ClientSide, "the client never acknowledged the SYN-ACK"
		}
		inProgress := sv.State == SynReceived && !se.retransmitOverdue(se.lastSYN, se.prevSYNGap, now) ||
			cl.State == SynSent && !ce.retransmitOverdue(ce.lastSYN, ce.prevSYNGap, now)
		if (sv.State == SynReceived || cl.State == SynSent || c.Dir[0].Segments <= 1) && !inProgress {
			c.addDiag(Diagnosis{ID: DiagHandshakeIncomplete, Side: who, Detail: what})
		}
	}

	for _, s := range []Side{ClientSide, ServerSide} {
		ep, peer := c.endpoint(s), c.endpoint(1-s)
		switch ep.State {
		case CloseWait:
			c.addDiag(Diagnosis{ID: DiagHalfClosed, Side: s,
				Detail: fmt.Sprintf("%s %s got the peer's FIN but its application never closed (CLOSE_WAIT %s)", s, ep.Addr, age(now, ep.Since))})
		case FinWait2:
			if peer.State != CloseWait {
				c.addDiag(Diagnosis{ID: DiagHalfClosed, Side: 1 - s,
					Detail: fmt.Sprintf("%s %s closed its side; %s never sent its FIN (FIN_WAIT_2 %s)", s, ep.Addr, 1-s, age(now, ep.Since))})
			}
		case FinWait1, Closing, LastAck:
			if !ep.ev.retransmitOverdue(ep.ev.lastFIN, ep.ev.prevFINGap, now) {
				break // in progress: the FIN's retransmission is not due yet, its ACK may still come
			}
			c.addDiag(Diagnosis{ID: DiagFinUnacknowledged, Side: s,
				Detail: fmt.Sprintf("%s's FIN was never acknowledged (%s %s)", s, ep.State, age(now, ep.Since))})
		}
	}

	for _, n := range c.rstNotes {
		if n.accepted && !refused && !c.doubt.isForged(n.packet) {
			c.addDiag(Diagnosis{ID: DiagReset, Side: n.from,
				Detail: fmt.Sprintf("%s %s reset the connection (packet %d)", n.from, c.endpoint(n.from).Addr, n.packet)})
		}
	}
	if !refused && !c.HasDiagnosis(DiagReset) && (ce.sentRST || se.sentRST) {
		side := ClientSide
		if se.sentRST {
			side = ServerSide
		}
		c.addDiag(Diagnosis{ID: DiagReset, Side: side,
			Detail: fmt.Sprintf("%s %s sent a RST", side, c.endpoint(side).Addr)})
	}
	for _, n := range c.rstNotes {
		if !n.accepted {
			c.addDiag(Diagnosis{ID: DiagRstIgnored, Side: 1 - n.from,
				Detail: fmt.Sprintf("RST from %s (packet %d) not accepted by %s: %s", n.from, n.packet, 1-n.from, n.verdict)})
		}
	}

	for _, s := range []Side{ClientSide, ServerSide} {
		d := &c.Dir[s]
		if d.ZeroWindows > 0 {
			state := "reopened later"
			if d.ZeroWindow {
				state = "still zero at the end"
			}
			c.addDiag(Diagnosis{ID: DiagZeroWindow, Side: s,
				Detail: fmt.Sprintf("%s %s advertised a zero window %d time(s), %s: its application is not reading",
					s, c.endpoint(s).Addr, d.ZeroWindows, state)})
		}
	}
	for _, s := range []Side{ClientSide, ServerSide} {
		if c.finInferred[s] {
			c.addDiag(Diagnosis{ID: DiagCaptureGap, Side: s,
				Detail: fmt.Sprintf("the %s's FIN was acknowledged but never captured", s)})
		}
		if m := c.Dir[s].MissedBytes; m > 0 {
			c.addDiag(Diagnosis{ID: DiagCaptureGap, Side: s,
				Detail: fmt.Sprintf("%d byte(s) sent by the %s were acknowledged but never captured", m, s)})
		}
	}
	if cl.State.Open() && sv.State.Open() && cl.State != SynSent {
		last := c.lastData.time()
		if last.IsZero() {
			last = c.FirstSeen
		}
		if now.Sub(last) >= idleAfter {
			c.addDiag(Diagnosis{ID: DiagIdle, Side: BothSides,
				Detail: fmt.Sprintf("no data for %s before the end of the capture", age(now, last))})
		}
	}
	c.diagnoseDoubts(stampOf(now))
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
func (e *evidence) retransmitOverdue(last stamp, gap time.Duration, now time.Time) bool {
	if last.isZero() {
		return true // no time known: do not hold a finding back on a guess
	}
	next := initialRTO
	if gap > 0 {
		next = 2 * gap
	}
	return !stampOf(now).before(last.add(next + next/rtoSlack))
}

func (c *Conn) ending() string {
	ce, se := &c.Client.ev, &c.Server.ev
	switch {
	case ce.sentRST && se.sentRST:
		return "RST both ways"
	case ce.sentRST:
		return "RST from client"
	case se.sentRST:
		return "RST from server"
	case ce.sentFIN && se.sentFIN:
		return "FIN both ways"
	case ce.sentFIN:
		return "FIN from client"
	case se.sentFIN:
		return "FIN from server"
	}
	return ""
}

// synUnansweredDetail and refusedDetail are the details a SYN flood writes for every
// connection, built without fmt: "%d SYN(s) to %s never answered (filtered, or host down)"
// and "%s answered the SYN with RST: nothing listens on port %d".
func synUnansweredDetail(n int, to netip.AddrPort) string {
	var buf [96]byte
	b := strconv.AppendInt(buf[:0], int64(n), 10)
	b = append(b, " SYN(s) to "...)
	b = to.AppendTo(b)
	b = append(b, " never answered (filtered, or host down)"...)
	return string(b)
}

// detailCache keeps the last SYN-unanswered and refused details a tracker wrote: a flood
// aims at one address, so most connections share them (one string rather than one each).
type detailCache struct {
	synN             int
	synTo, refusedBy netip.AddrPort
	syn, refusedText string
}

func (dc *detailCache) synUnanswered(n int, to netip.AddrPort) string {
	if dc == nil {
		return synUnansweredDetail(n, to)
	}
	if dc.syn == "" || n != dc.synN || to != dc.synTo {
		dc.synN, dc.synTo, dc.syn = n, to, synUnansweredDetail(n, to)
	}
	return dc.syn
}

func (dc *detailCache) refused(by netip.AddrPort) string {
	if dc == nil {
		return refusedDetail(by)
	}
	if dc.refusedText == "" || by != dc.refusedBy {
		dc.refusedBy, dc.refusedText = by, refusedDetail(by)
	}
	return dc.refusedText
}

func refusedDetail(sv netip.AddrPort) string {
	var buf [112]byte
	b := sv.Addr().AppendTo(buf[:0])
	b = append(b, " answered the SYN with RST: nothing listens on port "...)
	b = strconv.AppendUint(b, uint64(sv.Port()), 10)
	return string(b)
}

func age(now, since time.Time) string {
	if since.IsZero() || now.Before(since) {
		return "for an unknown time"
	}
	d := now.Sub(since)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("for %dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("for %dms", d.Milliseconds())
	}
	return "for " + d.Round(time.Second/10).String()
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
func (c *Conn) inference(side Side, s State, viaTimer bool) (bool, string) {
	ep := c.endpoint(side)
	switch {
	case viaTimer && ep.State == s && ep.Inferred:
		// The timer fired at an earlier evaluation (a Tick, a first Finish): keep what was said
		// then, when ep.State still named the state whose timer ran out.
		return true, ep.Evidence
	case viaTimer:
		return true, "timer expired since the last packet (" + timerReason(ep.State) + ")"
	case ep.ev.midstream:
		return true, "handshake not captured: assumed synchronized from mid-connection traffic"
	case c.RoleInferred && side == ClientSide && !ep.ev.gotSYN:
		return true, "client SYN not captured"
	case ep.ev.synAckLost > 0 && ep.ev.synAcked && s == Established || ep.ev.finAckLost > 0 && ep.ev.finAcked:
		return true, "an earlier ACK towards it was lost; the later one is assumed delivered"
	case ep.ev.pending():
		return true, "an ACK towards it came after an earlier one was lost; its arrival is not confirmed"
	case c.finInferred[side]:
		return true, "its FIN was not captured: inferred from the peer's ACK one past its last byte"
	case c.Dir[1-side].MissedBytes > 0:
		return true, "the peer's packets were partly not captured (acknowledged but never seen)"
	case ep.ev.gotRST && !ep.ev.sentRST:
		return true, "RST towards it assumed delivered (exact sequence number, nothing after it)"
	}
	return false, ""
}

// reason explains, for the events output, why seg moved side from old to new.
func (c *Conn) reason(seg *capture.Segment, side Side, old, new State) string {
	from := c.sideOf(seg)
	f := seg.Flags
	if from == side {
		peerFin := c.Dir[1-side].FinAckedBy(seg.Ack) && seg.Flags.Has(capture.ACK)
		switch {
		case f.Has(capture.RST):
			return "sent RST"
		case f.Has(capture.SYN | capture.ACK):
			return "sent SYN-ACK"
		case f.Has(capture.SYN):
			return "sent SYN"
		case peerFin && (new == CloseWait || new == TimeWait || new == Closing || new == Closed):
			return fmt.Sprintf("its ACK %d covers the peer's FIN", seg.Ack)
		case f.Has(capture.FIN) && (new == FinWait1 || new == LastAck || new == Closing):
			return "sent FIN"
		case new == Established && old == SynSent:
			return fmt.Sprintf("ACK %d acknowledges the SYN-ACK", seg.Ack)
		case new == SynSent || new == SynReceived || new == FinWait1 || new == LastAck:
			return "retransmitted what the peer had acknowledged: that ACK was lost"
		}
		return "sent " + f.String()
	}
	pd := &c.Dir[side]
	switch {
	case f.Has(capture.RST):
		return "accepted RST"
	case new == Established:
		return fmt.Sprintf("ACK %d acknowledges its SYN", seg.Ack)
	case pd.FinAckedBy(seg.Ack):
		return fmt.Sprintf("ACK %d covers its FIN (FIN at %d)", seg.Ack, pd.FinSeq)
	}
	return "received " + f.String()
}
