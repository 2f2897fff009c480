package tracker

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// What the tracker finds leaves it as data: a kind, which names the sentence a reader gets,
// and the facts that sentence needs (packet numbers, counts, durations, a side, a TCP state).
// The words are package report's (report/words.go): the tracker writes none, so a connection
// with findings holds no sentences, and a finding costs a sentence only if it is printed.

// DetailKind says which sentence a diagnosis's detail is. Each belongs to one diagnosis
// identifier (detailIDs).
type DetailKind uint8

const (
	DetailNone                 DetailKind = iota
	DetailSynUnanswered                   // N[0] SYNs to the server never answered
	DetailRefused                         // the server answered the SYN with RST
	DetailHandshakeNoFinalACK             // the server sent SYN-ACK but never got the final ACK
	DetailHandshakeNoSynAckACK            // the client never acknowledged the SYN-ACK
	DetailCloseWait                       // Side got the peer's FIN, its application never closed; D: how long
	DetailFinWait2                        // 1-Side closed its side, Side never sent its FIN; D: how long
	DetailFinUnacknowledged               // Side's FIN never acknowledged, in State for D
	DetailReset                           // Side reset the connection (packet N[0])
	DetailSentRST                         // Side sent a RST
	DetailRstIgnored                      // RST from 1-Side (packet N[0]) not accepted by Side: Verdict (challenge ACK: packet N[1])
	DetailZeroWindow                      // Side advertised a zero window N[0] times, still zero if N[1] is 1
	DetailFinNotCaptured                  // Side's FIN acknowledged, never captured
	DetailMissedBytes                     // N[0] bytes sent by Side acknowledged, never captured
	DetailOneSided                        // no packet from Side captured though the peer acknowledged it
	DetailIdle                            // no data for D before the end
	DetailMidstream                       // handshake not captured
	DetailPortReused                      // connection #N[0] had the 4-tuple before
	DetailForgedReset                     // RST as from 1-Side (packet N[0]) forged (Misfit), reset Side; 1-Side in State
	DetailForgedIgnored                   // the same, not accepted by Side
	DetailRtxTimeout                      // Side retransmitted N[0] times (packets N[1] to N[2], last backoff D), gave up about At; peer in State
	DetailKeepaliveTimeout                // Side sent N[0] keepalive probes (last packet N[1], every D), gave up about At; peer in State
	DetailRtxLostRST                      // Side gave up after N[0] unanswered retransmissions, reset (packet N[1]), lost; peer in State
	DetailKeepaliveLostRST                // the same after keepalive probes
	numDetailKinds
)

// detailIDs: the diagnosis each kind of detail belongs to.
var detailIDs = [numDetailKinds]string{
	DetailSynUnanswered: DiagSynUnanswered, DetailRefused: DiagRefused,
	DetailHandshakeNoFinalACK: DiagHandshakeIncomplete, DetailHandshakeNoSynAckACK: DiagHandshakeIncomplete,
	DetailCloseWait: DiagHalfClosed, DetailFinWait2: DiagHalfClosed, DetailFinUnacknowledged: DiagFinUnacknowledged,
	DetailReset: DiagReset, DetailSentRST: DiagReset, DetailRstIgnored: DiagRstIgnored,
	DetailZeroWindow: DiagZeroWindow, DetailFinNotCaptured: DiagCaptureGap, DetailMissedBytes: DiagCaptureGap,
	DetailOneSided: DiagCaptureGap, DetailIdle: DiagIdle, DetailMidstream: DiagMidstream,
	DetailPortReused: DiagPortReused, DetailForgedReset: DiagMiddleboxReset, DetailForgedIgnored: DiagMiddleboxReset,
	DetailRtxTimeout: DiagRetransmissionTimeout, DetailKeepaliveTimeout: DiagKeepaliveTimeout,
	DetailRtxLostRST: DiagRetransmissionTimeout, DetailKeepaliveLostRST: DiagKeepaliveTimeout,
}

// ID is the diagnosis identifier a detail of kind k belongs to ("" for none).
func (k DetailKind) ID() string {
	if k >= numDetailKinds {
		return ""
	}
	return detailIDs[k]
}

// Detail is what a diagnosis says beyond its identifier, as data: the kind of sentence and the
// facts it names. The endpoint addresses are the connection's (the diagnosis's Side names
// whose); report.AppendDetail writes the sentence.
type Detail struct {
	Kind    DetailKind
	State   State   // a TCP state the sentence names
	Verdict Verdict // DetailRstIgnored: why the RST was not accepted
	Misfit  Misfit  // DetailForged*: how the RST does not fit the endpoint it names
	N       [3]uint64
	// D is a duration: how long a state has lasted (AgeUnknown: not known), a backoff.
	D time.Duration
	// At is an instant: when a stack gave up.
	At capture.Time
}

// AgeUnknown is a Detail's D when how long a state has lasted is not known (no time for its
// start, or a start after the instant evaluated).
const AgeUnknown time.Duration = -1

// ageOf is how long a state entered at since has lasted by now, as Detail.D holds it.
func ageOf(now, since time.Time) time.Duration {
	if since.IsZero() || now.Before(since) {
		return AgeUnknown
	}
	return now.Sub(since)
}

// Misfit is how a RST does not fit the fingerprint of the endpoint it claims to come from
// (judgeRST): its TTL (hop limit) against the one that host's packets arrive with, and, as
// further evidence, the timestamps and IPv4 ID.
type Misfit struct {
	TTL, HostTTL uint8 // the RST's, and the host's packets'
	Flags        MisfitFlags
	IPID         uint16 // the RST's IPv4 ID
	HostIPID     uint16 // the host's latest (MisfitIPIDCounts)
}

// MisfitFlags say which misfits besides the TTL a RST shows.
type MisfitFlags uint8

const (
	MisfitHopLimit     MisfitFlags = 1 << iota // IPv6: the TTL is a hop limit
	MisfitNoTimestamps                         // no TCP timestamps, where the host always sends them
	MisfitIPIDNotZero                          // an IPv4 ID, where the host always sends 0
	MisfitIPIDCounts                           // an IPv4 ID off the host's count
)

// Verdict is what the receiver of a RST made of it (RFC 5961 as Linux applies it).
type Verdict uint8

const (
	VerdictNone          Verdict = iota
	VerdictNoSocket              // nothing there to reset
	VerdictAckMismatch           // in SYN_SENT, its ACK does not match the SYN
	VerdictAnswersSYN            // in SYN_SENT, it answers the SYN
	VerdictAlreadyClosed         // the receiver was closed already
	VerdictSeqUnknown            // the sender's sequence space is unknown: taken as accepted
	VerdictExact                 // the exact sequence number
	VerdictOneBelow              // one below, after a FIN
	VerdictTimeWait              // TIME_WAIT accepts only the exact sequence number
	VerdictHalfOpen              // in window of a half-open connection
	VerdictOutOfWindow           // out of window
	VerdictChallenge             // in window but not exact: draws a challenge ACK
	VerdictChallenged            // in window but not exact: answered by a challenge ACK (Detail.N[1])
	VerdictLost                  // accepted, but the receiver kept sending: lost or ignored
)

// EvidenceKind says which sentence explains an inferred state.
type EvidenceKind uint8

const (
	EvidenceNone            EvidenceKind = iota
	EvidenceTimer                        // the timer of State expired since the last packet
	EvidenceMidstream                    // handshake not captured
	EvidenceNoClientSYN                  // the client's SYN not captured
	EvidenceAckLost                      // an earlier ACK towards it lost, the later assumed delivered
	EvidenceAckPending                   // an ACK after a lost one, not confirmed
	EvidenceFinNotCaptured               // its FIN inferred from the peer's ACK
	EvidencePeerMissed                   // the peer's packets partly not captured
	EvidenceRSTDelivered                 // a RST towards it assumed delivered
	EvidenceInFlight                     // a packet towards it not arrived yet (one-way time D)
	EvidenceFINArrived                   // the peer's FIN arrived, its ACK not back yet (one-way time D)
	EvidenceRtxGaveUp                    // its retransmissions went unanswered: its stack gave up
	EvidenceKeepaliveGaveUp              // its keepalive probes went unanswered: its stack gave up
	EvidenceUnanswered                   // its last Count retransmissions or probes (the last is Packet) unanswered
	EvidenceForgedAs                     // a middlebox forged a RST in its name (Packet, Misfit)
	EvidenceLostRST                      // the peer's RST (Packet) after Count unanswered probes: lost
	EvidenceOrphan                       // FIN_WAIT_2 for over D: close() or shutdown()?
	EvidenceOneSided                     // one-sided capture
)

// Evidence is why an endpoint's state is inferred, as data (report.AppendEvidence writes it).
// Every endpoint carries one: 32 bytes.
type Evidence struct {
	Kind   EvidenceKind
	State  State // EvidenceTimer: the state whose timer ran out
	Misfit Misfit
	Count  uint32        // retransmissions or probes
	Packet uint64        // the packet it names
	D      time.Duration // a one-way time, a timeout
}

// Reason is why an event's endpoint changed state. The packet's flags and numbers are the
// event's own (Event.Flags, Ack; the timer's state is Event.Old).
type Reason uint8

const (
	ReasonNone          Reason = iota
	ReasonSentRST              // its own RST
	ReasonSentSYNACK           // its own SYN-ACK
	ReasonSentSYN              // its own SYN
	ReasonAckedPeerFIN         // its ACK covers the peer's FIN
	ReasonSentFIN              // its own FIN
	ReasonAckedSynAck          // its ACK acknowledges the SYN-ACK
	ReasonRetransmitted        // it retransmitted what the peer had acknowledged: that ACK was lost
	ReasonSent                 // another packet it sent
	ReasonAcceptedRST          // the peer's RST
	ReasonSynAcked             // the peer's ACK of its SYN
	ReasonFinAcked             // the peer's ACK of its FIN (Event.FinSeq)
	ReasonReceived             // another packet it received
	ReasonTimer                // the timer of Event.Old expired
	ReasonReplaced             // a new SYN took over the 4-tuple
)

// Ending is how a connection ended, as far as the wire shows.
type Ending uint8

const (
	EndedOpen Ending = iota // not ended (by a FIN or RST)
	EndedRSTBoth
	EndedRSTClient
	EndedRSTServer
	EndedFINBoth
	EndedFINClient
	EndedFINServer
)
