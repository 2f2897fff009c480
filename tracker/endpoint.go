package tracker

import (
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// An endpoint's state is not followed flag by flag: a capture point is not the endpoint, and a
// packet the tap saw may never have reached its host. Instead each endpoint keeps the evidence
// the wire gave about what it sent and what it received, and its state is a function of that
// evidence (the table in derive). Evidence that later packets contradict (a FIN retransmitted
// after the peer's ACK of it: that ACK was lost) is withdrawn, and the state follows.

// evidence is what the wire showed about one endpoint.
type evidence struct {
	// What the endpoint sent: certain, the tap saw it leave.
	sentSYN    bool // active open: a SYN without ACK
	sentSYNACK bool // answered a SYN
	sentFIN    bool
	// finPassive: its first FIN acknowledged the peer's FIN, so it closed second (CLOSE_WAIT →
	// LAST_ACK) rather than first or simultaneously (FIN_WAIT_1 → CLOSING/FIN_WAIT_2).
	finPassive bool
	sentRST    bool

	// What the endpoint received. gotSYN and gotFIN are certain (its own ACK covers them);
	// synAcked, finAcked and gotRST are assumed delivered when the tap saw them go towards it,
	// unless its later packets say otherwise.
	gotSYN   bool
	synAcked bool
	finAcked bool
	gotFIN   bool
	gotRST   bool

	// After a loss towards the endpoint has been proven (it retransmitted what the peer had
	// acknowledged), a later ACK is no longer assumed delivered: it is pending until the
	// endpoint's next retransmission was due and did not come.
	// One loss is taken as chance (the next ACK is assumed delivered); after two, the path
	// towards the endpoint is taken as dropping them and later ACKs wait for confirmation.
	synAckLost, finAckLost       int
	synAckPending, finAckPending capture.Time
	// The latest packet from the peer that acknowledged its SYN / FIN: a retransmission
	// within a round trip of it crossed it and proves no loss.
	tSynAckLast, tFinAckLast capture.Time
	// retries is the profile's retransmission budget for its SYN or SYN-ACK: once spent, its
	// silence means it gave up, not that an ACK arrived.
	retries int

	// midstream: the handshake was not captured; the endpoint is taken as synchronized.
	midstream bool
	// replaced: a new connection took over the 4-tuple, so this socket is gone (a stack
	// reuses a port only once TIME_WAIT or a failed connect is over).
	replaced bool

	// Times, from packet timestamps.
	firstSYN   capture.Time // first SYN (or SYN-ACK) it sent
	lastSYN    capture.Time // latest (re)transmission of it
	nSYN       int          // SYNs (or SYN-ACKs) sent with the same ISN
	tSynAcked  capture.Time
	tFinAcked  capture.Time
	tGotFIN    capture.Time
	tSentFIN   capture.Time
	lastFIN    capture.Time  // latest (re)transmission of its FIN
	prevFINGap time.Duration // gap between its last two FIN transmissions
	tReset     capture.Time
	prevSYNGap time.Duration // gap between its last two SYN transmissions (retry backoff)
}

// Endpoint is one side of a connection.
type Endpoint struct {
	Addr netip.AddrPort
	// State as of the last evaluation (end of input, --at, or the latest packet).
	State State
	// Since is when it entered State (the packet, or the timer, that moved it).
	Since time.Time
	// Inferred is set when the wire did not show the state directly; Evidence says why (as
	// data: report.AppendEvidence writes it).
	Inferred bool
	Evidence Evidence
	// Deadline is when the current state's timer fires (zero: no timer runs).
	Deadline time.Time
	// OS: its operating system, when per-endpoint profiles are on (Config.OS).
	OS EndpointOS
	ev evidence
}

// derive is the endpoint state machine, written as one table: the first row whose condition
// holds gives the state. Conditions read the evidence only, so withdrawing evidence moves the
// state back by itself. Timers are applied afterwards by age.
func (e *evidence) derive(now capture.Time) State {
	// The table, with each acknowledgment worked out only when a row reads it (confirmed is
	// pure: the same rows hold as if both were computed up front; TestDeriveAsTable checks it
	// against the table written as one switch). settle runs it for both endpoints on every
	// packet.
	if e.sentRST || e.gotRST || e.replaced { // aborted, accepted the peer's abort, or replaced
		return Closed
	}
	if !(e.sentSYN || e.sentSYNACK || e.midstream) { // never opened
		return Closed
	}
	synced := e.midstream || e.gotSYN && (e.sentFIN || e.synAcked ||
		e.nSYN <= e.retries && confirmed(e.synAckPending, e.lastSYN, e.prevSYNGap, now))
	if !synced {
		if e.sentSYN && !e.gotSYN { // connect() waiting for SYN-ACK
			return SynSent
		}
		return SynReceived // answered a SYN (or SYNs crossed), waiting for the ACK of its own SYN
	}
	if !e.sentFIN {
		if e.gotFIN { // peer closed, application has not
			return CloseWait
		}
		return Established
	}
	finAcked := e.finAcked || confirmed(e.finAckPending, e.lastFIN, e.prevFINGap, now)
	switch {
	case !e.gotFIN && !finAcked:
		return FinWait1
	case !e.gotFIN:
		return FinWait2
	case !finAcked && e.finPassive: // closed second, waiting for the ACK of its FIN
		return LastAck
	case !finAcked: // FINs crossed
		return Closing
	case e.finPassive: // LAST_ACK got its ACK
		return Closed
	default: // closed first (or simultaneously), both FINs done
		return TimeWait
	}
}

// confirmed reports whether an ACK pending since pending has been confirmed by now: the
// endpoint's next retransmission (twice its last backoff after its last transmission) was
// due and did not come.
func confirmed(pending, last capture.Time, gap time.Duration, now capture.Time) bool {
	if pending.IsZero() {
		return false
	}
	if gap <= 0 {
		gap = time.Second // unknown backoff: Linux's initial RTO for a handshake
	}
	return !now.Before(max(pending, last).Add(2 * gap))
}

// pending reports whether the endpoint's state waits on an ACK not yet confirmed.
func (e *evidence) pending() bool {
	return !e.synAcked && !e.synAckPending.IsZero() || !e.finAcked && !e.finAckPending.IsZero()
}

// enteredAt is when the evidence behind state s was complete: the time the state began.
func (e *evidence) enteredAt(s State, fallback capture.Time) capture.Time {
	switch s {
	case TimeWait:
		return max(e.tFinAcked, e.tGotFIN)
	case Closed:
		if e.sentRST || e.gotRST || e.replaced {
			return e.tReset
		}
		if e.finPassive {
			return e.tFinAcked
		}
	case SynSent, SynReceived:
		return e.firstSYN
	case FinWait1, LastAck:
		return e.tSentFIN
	case FinWait2:
		return e.tFinAcked
	case CloseWait:
		return e.tGotFIN
	case Closing:
		return max(e.tSentFIN, e.tGotFIN)
	case Established:
		return max(e.tSynAcked, fallback)
	}
	return fallback
}

// deadline is when the state's timer expires under profile p (zero: no timer applies).
func (e *evidence) deadline(s State, since capture.Time, p *Profile) capture.Time {
	switch s {
	case TimeWait:
		return since.Add(p.TimeWait)
	case SynSent:
		return e.handshakeDeadline(p.SynRetries, p.SynTimeout)
	case SynReceived:
		if e.sentSYNACK && !e.sentSYN {
			return e.handshakeDeadline(p.SynAckRetries, p.SynAckTimeout)
		}
	}
	return 0
}

// handshakeDeadline: once every retry has been seen, the stack waits one more doubled timeout
// and gives up; before that, it gives up at the profile's total from the first SYN.
func (e *evidence) handshakeDeadline(retries int, total time.Duration) capture.Time {
	if e.nSYN >= retries+1 && e.prevSYNGap > 0 {
		return e.lastSYN.Add(2 * e.prevSYNGap)
	}
	return e.firstSYN.Add(total)
}

// evaluate derives the endpoint's state as of now, applying timers.
func (ep *Endpoint) evaluate(now capture.Time, p *Profile, lastPacket capture.Time) (s State, since capture.Time, viaTimer bool) {
	s, since, viaTimer, _ = ep.evaluateTimer(now, p, lastPacket)
	return s, since, viaTimer
}

// evaluateTimer is evaluate that also says when the state's timer will fire (unset: no timer
// runs, or it has fired already).
func (ep *Endpoint) evaluateTimer(now capture.Time, p *Profile, lastPacket capture.Time) (s State, since capture.Time, viaTimer bool, deadline capture.Time) {
	s = ep.ev.derive(now)
	since = ep.ev.enteredAt(s, lastPacket)
	if d := ep.ev.deadline(s, since, p); !d.IsZero() {
		if !now.Before(d) {
			return Closed, d, true, 0
		}
		return s, since, false, d
	}
	return s, since, false, 0
}
