package report

import (
	"net/netip"
	"strconv"
	"time"

	"github.com/tcpstate/tcpstate/tracker"
)

// Every sentence about a finding is written here, from the data the tracker produces: a
// diagnosis's detail (AppendDetail), why a state is inferred (AppendEvidence), why an event
// happened (AppendReason), how a connection ended (Ending) and what the receiver of a RST made
// of it (verdicts), and the packet comments of --annotate. The tracker writes no words; every
// output (table, JSON, events, HTML, --expect, --fail-on, --annotate) goes through these, so a
// sentence reads the same everywhere.
//
// They append with strconv rather than fmt: a SYN flood writes a detail per connection.

// DetailText is the sentence of diagnosis d of connection c.
func DetailText(c *tracker.Conn, d *tracker.Diagnosis) string {
	var buf [256]byte
	return string(AppendDetail(buf[:0], c, d))
}

// AppendDetail appends the sentence of diagnosis d of connection c: what is wrong, in one line
// for a human (the addresses are c's endpoints').
func AppendDetail(b []byte, c *tracker.Conn, d *tracker.Diagnosis) []byte {
	x := &d.Detail
	s, peer := d.Side, 1-d.Side
	n := x.N
	switch x.Kind {
	case tracker.DetailSynUnanswered:
		b = strconv.AppendUint(b, n[0], 10)
		b = append(b, " SYN(s) to "...)
		b = addrOf(c, s).AppendTo(b)
		return append(b, " never answered (filtered, or host down)"...)
	case tracker.DetailRefused:
		sv := addrOf(c, s)
		b = sv.Addr().AppendTo(b)
		b = append(b, " answered the SYN with RST: nothing listens on port "...)
		return strconv.AppendUint(b, uint64(sv.Port()), 10)
	case tracker.DetailHandshakeNoFinalACK:
		return append(b, "the server sent SYN-ACK but never got the final ACK"...)
	case tracker.DetailHandshakeNoSynAckACK:
		return append(b, "the client never acknowledged the SYN-ACK"...)
	case tracker.DetailCloseWait:
		b = sideAddr(b, c, s)
		b = append(b, " got the peer's FIN but its application never closed (CLOSE_WAIT "...)
		return append(appendAge(b, x.D), ')')
	case tracker.DetailFinWait2:
		b = sideAddr(b, c, peer)
		b = append(b, " closed its side; "...)
		b = append(b, s.String()...)
		b = append(b, " never sent its FIN (FIN_WAIT_2 "...)
		return append(appendAge(b, x.D), ')')
	case tracker.DetailFinUnacknowledged:
		b = append(b, s.String()...)
		b = append(b, "'s FIN was never acknowledged ("...)
		b = append(b, x.State.String()...)
		b = append(b, ' ')
		return append(appendAge(b, x.D), ')')
	case tracker.DetailReset:
		b = sideAddr(b, c, s)
		b = append(b, " reset the connection (packet "...)
		return append(strconv.AppendUint(b, n[0], 10), ')')
	case tracker.DetailSentRST:
		b = sideAddr(b, c, s)
		return append(b, " sent a RST"...)
	case tracker.DetailRstIgnored:
		b = append(b, "RST from "...)
		b = append(b, peer.String()...)
		b = append(b, " (packet "...)
		b = strconv.AppendUint(b, n[0], 10)
		b = append(b, ") not accepted by "...)
		b = append(b, s.String()...)
		b = append(b, ": "...)
		return appendVerdict(b, x.Verdict, n[1])
	case tracker.DetailZeroWindow:
		b = sideAddr(b, c, s)
		b = append(b, " advertised a zero window "...)
		b = strconv.AppendUint(b, n[0], 10)
		b = append(b, " time(s), "...)
		if n[1] != 0 {
			b = append(b, "still zero at the end"...)
		} else {
			b = append(b, "reopened later"...)
		}
		return append(b, ": its application is not reading"...)
	case tracker.DetailFinNotCaptured:
		b = append(b, "the "...)
		b = append(b, s.String()...)
		return append(b, "'s FIN was acknowledged but never captured"...)
	case tracker.DetailMissedBytes:
		b = strconv.AppendUint(b, n[0], 10)
		b = append(b, " byte(s) sent by the "...)
		b = append(b, s.String()...)
		return append(b, " were acknowledged but never captured"...)
	case tracker.DetailOneSided:
		b = append(b, "one-sided capture: no packet from the "...)
		b = append(b, s.String()...)
		b = append(b, " was captured, though the "...)
		b = append(b, peer.String()...)
		return append(b, " acknowledged what it sent (a filter such as 'dst port 80', or an asymmetric tap); both states are inferred"...)
	case tracker.DetailIdle:
		// "for for": what the tracker wrote (fmt "no data for %s" around its age, which
		// says "for" itself); kept while outputs must stay byte-identical (issue 13).
		b = append(b, "no data for "...)
		b = appendAge(b, x.D)
		return append(b, " before the end of the capture"...)
	case tracker.DetailMidstream:
		return append(b, "handshake not captured: states inferred from the first packets"...)
	case tracker.DetailPortReused:
		b = append(b, "4-tuple reused: connection #"...)
		b = strconv.AppendUint(b, n[0], 10)
		return append(b, " had it before"...)
	case tracker.DetailForgedReset, tracker.DetailForgedIgnored:
		// The RST names peer; s (the one it was sent to) is the one it fooled.
		b = append(b, "RST as from "...)
		b = appendAddr(b, addrOf(c, peer).Addr())
		b = append(b, " (packet "...)
		b = strconv.AppendUint(b, n[0], 10)
		b = append(b, ") was forged on the path: "...)
		b = appendMisfits(b, &x.Misfit)
		b = append(b, ". It "...)
		if x.Kind == tracker.DetailForgedReset {
			b = append(b, "reset the "...)
			b = sideAddr(b, c, s)
		} else {
			b = append(b, "was not accepted by the "...)
			b = append(b, s.String()...)
		}
		b = append(b, "; the "...)
		b = append(b, peer.String()...)
		b = append(b, " never sent it ("...)
		b = append(b, x.State.String()...)
		return append(b, " as far as the wire shows)"...)
	case tracker.DetailRtxTimeout:
		b = sideAddr(b, c, s)
		b = append(b, " retransmitted "...)
		b = strconv.AppendUint(b, n[0], 10)
		b = append(b, " time(s) (packets "...)
		b = strconv.AppendUint(b, n[1], 10)
		b = append(b, " to "...)
		b = strconv.AppendUint(b, n[2], 10)
		b = append(b, ", last backoff "...)
		b = append(b, x.D.Round(time.Millisecond).String()...)
		b = append(b, ") with no answer"...)
		return gaveUp(b, x, peer)
	case tracker.DetailKeepaliveTimeout:
		b = sideAddr(b, c, s)
		b = append(b, " sent "...)
		b = strconv.AppendUint(b, n[0], 10)
		b = append(b, " keepalive probe(s) (the last is packet "...)
		b = strconv.AppendUint(b, n[1], 10)
		b = append(b, ", every "...)
		b = append(b, x.D.Round(time.Millisecond).String()...)
		b = append(b, ") with no answer"...)
		return gaveUp(b, x, peer)
	case tracker.DetailRtxLostRST, tracker.DetailKeepaliveLostRST:
		b = sideAddr(b, c, s)
		b = append(b, " gave up after "...)
		b = strconv.AppendUint(b, n[0], 10)
		if x.Kind == tracker.DetailRtxLostRST {
			b = append(b, " unanswered retransmission(s)"...)
		} else {
			b = append(b, " unanswered keepalive probe(s)"...)
		}
		b = append(b, " and reset the connection (packet "...)
		b = strconv.AppendUint(b, n[1], 10)
		b = append(b, "); the path was not delivering, so the "...)
		b = append(b, peer.String()...)
		b = append(b, " most likely never got the RST ("...)
		b = append(b, x.State.String()...)
		return append(b, ", half-open)"...)
	}
	return b
}

// gaveUp ends the sentence of a stack that gave up in silence (at x.At) on a peer in x.State.
func gaveUp(b []byte, x *tracker.Detail, peer tracker.Side) []byte {
	b = append(b, ", then fell silent: its stack gave up about "...)
	b = x.At.Std().AppendFormat(b, time.RFC3339Nano)
	b = append(b, "; the "...)
	b = append(b, peer.String()...)
	b = append(b, ", "...)
	b = append(b, x.State.String()...)
	return append(b, ", never heard (half-open)"...)
}

// detailAddrs are the endpoint addresses the sentence of d names (unset: none), to tell
// whether two diagnoses read the same (JSONLine keeps the last one written).
func detailAddrs(c *tracker.Conn, d *tracker.Diagnosis) (side, peer netip.AddrPort) {
	switch d.Detail.Kind {
	case tracker.DetailSynUnanswered, tracker.DetailRefused, tracker.DetailCloseWait, tracker.DetailReset,
		tracker.DetailSentRST, tracker.DetailZeroWindow, tracker.DetailRtxTimeout, tracker.DetailKeepaliveTimeout,
		tracker.DetailRtxLostRST, tracker.DetailKeepaliveLostRST:
		return addrOf(c, d.Side), netip.AddrPort{}
	case tracker.DetailFinWait2:
		return netip.AddrPort{}, addrOf(c, 1-d.Side)
	case tracker.DetailForgedReset, tracker.DetailForgedIgnored:
		return addrOf(c, d.Side), addrOf(c, 1-d.Side)
	}
	return netip.AddrPort{}, netip.AddrPort{}
}

func addrOf(c *tracker.Conn, s tracker.Side) netip.AddrPort {
	if s == tracker.ClientSide {
		return c.Client.Addr
	}
	return c.Server.Addr
}

// sideAddr appends "client 192.0.2.1:80": the side and its address.
func sideAddr(b []byte, c *tracker.Conn, s tracker.Side) []byte {
	b = append(b, s.String()...)
	b = append(b, ' ')
	return appendAddrPort(b, addrOf(c, s))
}

// appendAddrPort and appendAddr append what String returns (AppendTo leaves an invalid one out).
func appendAddrPort(b []byte, a netip.AddrPort) []byte {
	if !a.Addr().IsValid() {
		return append(b, a.String()...)
	}
	return a.AppendTo(b)
}

func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(b, a.String()...)
	}
	return a.AppendTo(b)
}

// appendAge appends how long a state has lasted ("for 3.2s"), d as tracker.Detail holds it.
func appendAge(b []byte, d time.Duration) []byte {
	switch {
	case d < 0:
		return append(b, "for an unknown time"...)
	case d < time.Millisecond:
		b = strconv.AppendInt(append(b, "for "...), d.Microseconds(), 10)
		return append(b, "µs"...)
	case d < time.Second:
		b = strconv.AppendInt(append(b, "for "...), d.Milliseconds(), 10)
		return append(b, "ms"...)
	}
	return append(append(b, "for "...), d.Round(time.Second/10).String()...)
}

// appendMisfits appends how a forged RST does not fit the host it names, in words a support
// engineer can check in Wireshark.
func appendMisfits(b []byte, m *tracker.Misfit) []byte {
	if m.Flags&tracker.MisfitHopLimit != 0 {
		b = append(b, "hop limit "...)
	} else {
		b = append(b, "TTL "...)
	}
	b = strconv.AppendUint(b, uint64(m.TTL), 10)
	b = append(b, " at the tap, where that host's packets arrive with "...)
	b = strconv.AppendUint(b, uint64(m.HostTTL), 10)
	if m.Flags&tracker.MisfitNoTimestamps != 0 {
		b = append(b, "; no timestamps, where it always sends them"...)
	}
	switch {
	case m.Flags&tracker.MisfitIPIDNotZero != 0:
		b = append(b, "; IP ID "...)
		b = strconv.AppendUint(b, uint64(m.IPID), 10)
		b = append(b, ", where it always sends 0"...)
	case m.Flags&tracker.MisfitIPIDCounts != 0:
		b = append(b, "; IP ID "...)
		b = strconv.AppendUint(b, uint64(m.IPID), 10)
		b = append(b, ", where its packets count up from "...)
		b = strconv.AppendUint(b, uint64(m.HostIPID), 10)
	}
	return b
}

// verdicts: what the receiver of a RST made of it (VerdictChallenged is written apart).
var verdicts = [...]string{
	tracker.VerdictNoSocket:      "no socket",
	tracker.VerdictAckMismatch:   "ACK does not match the SYN",
	tracker.VerdictAnswersSYN:    "answers the SYN",
	tracker.VerdictAlreadyClosed: "already closed",
	tracker.VerdictSeqUnknown:    "sequence unknown, taken as accepted",
	tracker.VerdictExact:         "exact sequence number",
	tracker.VerdictOneBelow:      "sequence number one below (after FIN)",
	tracker.VerdictTimeWait:      "TIME_WAIT accepts only the exact sequence number",
	tracker.VerdictHalfOpen:      "in window of a half-open connection",
	tracker.VerdictOutOfWindow:   "out of window",
	tracker.VerdictChallenge:     "in window but not exact: draws a challenge ACK (RFC 5961)",
	tracker.VerdictLost:          "lost or ignored: the receiver kept sending",
	tracker.VerdictChallenged:    "",
}

// appendVerdict appends verdict v (challenge: the packet of the challenge ACK that answered).
func appendVerdict(b []byte, v tracker.Verdict, challenge uint64) []byte {
	if v == tracker.VerdictChallenged {
		b = append(b, "in window but not exact: answered by a challenge ACK (packet "...)
		b = strconv.AppendUint(b, challenge, 10)
		return append(b, ", RFC 5961)"...)
	}
	if int(v) < len(verdicts) {
		return append(b, verdicts[v]...)
	}
	return b
}

// evidences: why a state is inferred, for the kinds that name no fact.
var evidences = [...]string{
	tracker.EvidenceMidstream:       "handshake not captured: assumed synchronized from mid-connection traffic",
	tracker.EvidenceNoClientSYN:     "client SYN not captured",
	tracker.EvidenceAckLost:         "an earlier ACK towards it was lost; the later one is assumed delivered",
	tracker.EvidenceAckPending:      "an ACK towards it came after an earlier one was lost; its arrival is not confirmed",
	tracker.EvidenceFinNotCaptured:  "its FIN was not captured: inferred from the peer's ACK one past its last byte",
	tracker.EvidencePeerMissed:      "the peer's packets were partly not captured (acknowledged but never seen)",
	tracker.EvidenceRSTDelivered:    "RST towards it assumed delivered (exact sequence number, nothing after it)",
	tracker.EvidenceRtxGaveUp:       "its retransmissions went unanswered and it was silent well past the next one due: its stack gave up (no packet shows it)",
	tracker.EvidenceKeepaliveGaveUp: "its keepalive probes went unanswered and it was silent well past the next one due: its stack gave up (no packet shows it)",
	tracker.EvidenceOneSided:        "one-sided capture: the peer's packets were not captured (a filter such as 'dst port 80', or an asymmetric tap); the state is a guess from one direction",
}

// EvidenceText is why an endpoint's state is inferred ("" when it is not).
func EvidenceText(e *tracker.Evidence) string {
	if e.Kind == tracker.EvidenceNone {
		return ""
	}
	if int(e.Kind) < len(evidences) && evidences[e.Kind] != "" {
		return evidences[e.Kind] // no copy
	}
	var buf [256]byte
	return string(AppendEvidence(buf[:0], e))
}

// AppendEvidence appends why an endpoint's state is inferred.
func AppendEvidence(b []byte, e *tracker.Evidence) []byte {
	switch e.Kind {
	case tracker.EvidenceTimer:
		b = append(b, "timer expired since the last packet ("...)
		b = append(b, timerReason(e.State)...)
		return append(b, ')')
	case tracker.EvidenceInFlight:
		b = append(b, "a packet towards it passed the tap less than its one-way time ("...)
		b = append(b, e.D.Round(time.Millisecond).String()...)
		return append(b, ", half the round trip from the tap) before this instant: not arrived yet"...)
	case tracker.EvidenceFINArrived:
		b = append(b, "the peer's FIN passed the tap more than its one-way time ("...)
		b = append(b, e.D.Round(time.Millisecond).String()...)
		return append(b, ", half the round trip from the tap) before this instant: arrived, though its ACK cannot be back yet"...)
	case tracker.EvidenceUnanswered:
		b = append(b, "its last "...)
		b = strconv.AppendUint(b, uint64(e.Count), 10)
		b = append(b, " retransmissions or probes (the last is packet "...)
		b = strconv.AppendUint(b, e.Packet, 10)
		return append(b, ") went unanswered and it has been silent since: if its stack gave up when the next one was due, it is CLOSED already"...)
	case tracker.EvidenceForgedAs:
		b = append(b, "a middlebox forged a RST in its name (packet "...)
		b = strconv.AppendUint(b, e.Packet, 10)
		b = append(b, ": "...)
		b = appendMisfits(b, &e.Misfit)
		return append(b, "); it never sent it, and whether the middlebox also reset it is not on the wire"...)
	case tracker.EvidenceLostRST:
		b = append(b, "the peer's RST (packet "...)
		b = strconv.AppendUint(b, e.Packet, 10)
		b = append(b, ") followed "...)
		b = strconv.AppendUint(b, uint64(e.Count), 10)
		return append(b, " unanswered probe(s) or retransmission(s): the path towards it was not delivering, so the RST is taken as lost"...)
	case tracker.EvidenceOrphan:
		b = append(b, "FIN_WAIT_2 for over "...)
		b = append(b, e.D.String()...)
		return append(b, ": gone by now if its application called close(), still there after shutdown() alone; the wire cannot tell which"...)
	}
	if int(e.Kind) < len(evidences) {
		return append(b, evidences[e.Kind]...)
	}
	return b
}

// timerReason is why a timer of state old ended it.
func timerReason(old tracker.State) string {
	switch old {
	case tracker.TimeWait:
		return "TIME_WAIT timer expired (2·MSL)"
	case tracker.SynSent:
		return "connect() gave up: SYN retries exhausted"
	case tracker.SynReceived:
		return "SYN-ACK retries exhausted: half-open connection dropped"
	}
	return "timer expired"
}

// reasons: why an endpoint changed state, for the reasons that name no number.
var reasons = [...]string{
	tracker.ReasonSentRST:       "sent RST",
	tracker.ReasonSentSYNACK:    "sent SYN-ACK",
	tracker.ReasonSentSYN:       "sent SYN",
	tracker.ReasonSentFIN:       "sent FIN",
	tracker.ReasonRetransmitted: "retransmitted what the peer had acknowledged: that ACK was lost",
	tracker.ReasonAcceptedRST:   "accepted RST",
	tracker.ReasonReplaced:      "a new SYN reuses the 4-tuple: the old socket is gone",
}

// ReasonText is why event e happened ("" when nothing says).
func ReasonText(e *tracker.Event) string {
	if int(e.Reason) < len(reasons) && reasons[e.Reason] != "" {
		return reasons[e.Reason]
	}
	if e.Reason == tracker.ReasonTimer {
		return timerReason(e.Old)
	}
	var buf [96]byte
	return string(AppendReason(buf[:0], e))
}

// AppendReason appends why event e happened: what its packet did, or the timer that expired.
func AppendReason(b []byte, e *tracker.Event) []byte {
	switch e.Reason {
	case tracker.ReasonAckedPeerFIN:
		b = append(b, "its ACK "...)
		b = strconv.AppendUint(b, uint64(e.Ack), 10)
		return append(b, " covers the peer's FIN"...)
	case tracker.ReasonAckedSynAck:
		b = append(b, "ACK "...)
		b = strconv.AppendUint(b, uint64(e.Ack), 10)
		return append(b, " acknowledges the SYN-ACK"...)
	case tracker.ReasonSent:
		return append(append(b, "sent "...), e.Flags.String()...)
	case tracker.ReasonSynAcked:
		b = append(b, "ACK "...)
		b = strconv.AppendUint(b, uint64(e.Ack), 10)
		return append(b, " acknowledges its SYN"...)
	case tracker.ReasonFinAcked:
		b = append(b, "ACK "...)
		b = strconv.AppendUint(b, uint64(e.Ack), 10)
		b = append(b, " covers its FIN (FIN at "...)
		b = strconv.AppendUint(b, uint64(e.FinSeq), 10)
		return append(b, ')')
	case tracker.ReasonReceived:
		return append(append(b, "received "...), e.Flags.String()...)
	case tracker.ReasonTimer:
		return append(b, timerReason(e.Old)...)
	}
	if int(e.Reason) < len(reasons) {
		return append(b, reasons[e.Reason]...)
	}
	return b
}

// endings: how a connection ended, as far as the wire shows.
var endings = [...]string{
	tracker.EndedOpen:      "",
	tracker.EndedRSTBoth:   "RST both ways",
	tracker.EndedRSTClient: "RST from client",
	tracker.EndedRSTServer: "RST from server",
	tracker.EndedFINBoth:   "FIN both ways",
	tracker.EndedFINClient: "FIN from client",
	tracker.EndedFINServer: "FIN from server",
}

// Ending is a short account of how a connection ended ("FIN both ways", "RST from server";
// "" while it has not).
func Ending(e tracker.Ending) string {
	if int(e) < len(endings) {
		return endings[e]
	}
	return ""
}

// ChangeComment is the packet comment --annotate writes on a packet that changed a state:
// "client SYN_SENT → ESTABLISHED".
func ChangeComment(e *tracker.Event, names tracker.Naming) string {
	return e.Side.String() + " " + e.Old.Name(names) + " → " + e.New.Name(names)
}

// WindowComment is the packet comment --annotate writes where side's window closes (zero) or
// reopens.
func WindowComment(side tracker.Side, zero bool) string {
	if zero {
		return "zero-window: " + side.String()
	}
	return "window reopened: " + side.String()
}
