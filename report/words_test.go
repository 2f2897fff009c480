package report

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/tracker"
)

// The sentences as the tracker wrote them with fmt before it handed findings over as data:
// every kind of detail, evidence, reason, verdict and ending renders exactly so, on IPv4, IPv6
// and zoned addresses, and no kind is left without a sentence.

func TestDetailSentences(t *testing.T) {
	for _, addrs := range [][2]string{{"192.0.2.1:40000", "198.51.100.7:80"}, {"[2001:db8::1]:40000", "[fe80::1%eth0]:443"}} {
		c := &tracker.Conn{}
		c.Client.Addr, c.Server.Addr = netip.MustParseAddrPort(addrs[0]), netip.MustParseAddrPort(addrs[1])
		cl, sv := c.Client.Addr, c.Server.Addr
		at := time.Date(2026, 1, 2, 3, 4, 5, 678900000, time.UTC)
		m := tracker.Misfit{TTL: 64, HostTTL: 63, Flags: tracker.MisfitNoTimestamps | tracker.MisfitIPIDCounts, IPID: 999, HostIPID: 12}
		mWhy := "TTL 64 at the tap, where that host's packets arrive with 63; no timestamps, where it always sends them; IP ID 999, where its packets count up from 12"
		cases := []struct {
			side tracker.Side
			d    tracker.Detail
			want string
		}{
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailSynUnanswered, N: [3]uint64{3}},
				fmt.Sprintf("%d SYN(s) to %s never answered (filtered, or host down)", 3, sv)},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailRefused},
				fmt.Sprintf("%s answered the SYN with RST: nothing listens on port %d", sv.Addr(), sv.Port())},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailHandshakeNoFinalACK}, "the server sent SYN-ACK but never got the final ACK"},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailHandshakeNoSynAckACK}, "the client never acknowledged the SYN-ACK"},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailCloseWait, D: 1500 * time.Microsecond},
				fmt.Sprintf("%s %s got the peer's FIN but its application never closed (CLOSE_WAIT %s)", "server", sv, "for 1ms")},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailFinWait2, D: tracker.AgeUnknown},
				fmt.Sprintf("%s %s closed its side; %s never sent its FIN (FIN_WAIT_2 %s)", "client", cl, "server", "for an unknown time")},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailFinUnacknowledged, State: tracker.LastAck, D: 61*time.Second + 449*time.Millisecond},
				"client's FIN was never acknowledged (LAST_ACK for 1m1.4s)"},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailReset, N: [3]uint64{42}},
				fmt.Sprintf("%s %s reset the connection (packet %d)", "client", cl, 42)},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailSentRST}, fmt.Sprintf("%s %s sent a RST", "server", sv)},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailRstIgnored, Verdict: tracker.VerdictChallenged, N: [3]uint64{5, 6}},
				"RST from client (packet 5) not accepted by server: in window but not exact: answered by a challenge ACK (packet 6, RFC 5961)"},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailRstIgnored, Verdict: tracker.VerdictOutOfWindow, N: [3]uint64{9}},
				"RST from server (packet 9) not accepted by client: out of window"},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailZeroWindow, N: [3]uint64{4, 1}},
				fmt.Sprintf("%s %s advertised a zero window %d time(s), %s: its application is not reading", "server", sv, 4, "still zero at the end")},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailZeroWindow, N: [3]uint64{1}},
				fmt.Sprintf("%s %s advertised a zero window %d time(s), %s: its application is not reading", "client", cl, 1, "reopened later")},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailFinNotCaptured}, "the server's FIN was acknowledged but never captured"},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailMissedBytes, N: [3]uint64{1448}}, "1448 byte(s) sent by the client were acknowledged but never captured"},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailOneSided},
				"one-sided capture: no packet from the server was captured, though the client acknowledged what it sent (a filter such as 'dst port 80', or an asymmetric tap); both states are inferred"},
			{tracker.BothSides, tracker.Detail{Kind: tracker.DetailIdle, D: 90 * time.Second}, "no data for for 1m30s before the end of the capture"},
			{tracker.BothSides, tracker.Detail{Kind: tracker.DetailMidstream}, "handshake not captured: states inferred from the first packets"},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailPortReused, N: [3]uint64{17}}, "4-tuple reused: connection #17 had it before"},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailForgedReset, State: tracker.Established, Misfit: m, N: [3]uint64{8}},
				fmt.Sprintf("RST as from %s (packet %d) was forged on the path: %s. It %s; the %s never sent it (%s as far as the wire shows)",
					sv.Addr(), 8, mWhy, "reset the client "+cl.String(), "server", "ESTABLISHED")},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailForgedIgnored, State: tracker.Closed, Misfit: tracker.Misfit{TTL: 50, HostTTL: 60, Flags: tracker.MisfitHopLimit | tracker.MisfitIPIDNotZero, IPID: 7}, N: [3]uint64{8}},
				fmt.Sprintf("RST as from %s (packet %d) was forged on the path: %s. It %s; the %s never sent it (%s as far as the wire shows)",
					cl.Addr(), 8, "hop limit 50 at the tap, where that host's packets arrive with 60; IP ID 7, where it always sends 0", "was not accepted by the server", "client", "CLOSED")},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailRtxTimeout, State: tracker.Established, N: [3]uint64{6, 10, 30}, D: 3200400 * time.Microsecond, At: capture.TimeOf(at)},
				fmt.Sprintf("%s %s retransmitted %d time(s) (packets %d to %d, last backoff %s) with no answer, then fell silent: its stack gave up about %s; the %s, %s, never heard (half-open)",
					"client", cl, 6, 10, 30, "3.2s", at.Format(time.RFC3339Nano), "server", "ESTABLISHED")},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailKeepaliveTimeout, State: tracker.CloseWait, N: [3]uint64{9, 77}, D: 75 * time.Second, At: capture.TimeOf(at)},
				fmt.Sprintf("%s %s sent %d keepalive probe(s) (the last is packet %d, every %s) with no answer, then fell silent: its stack gave up about %s; the %s, %s, never heard (half-open)",
					"server", sv, 9, 77, "1m15s", at.Format(time.RFC3339Nano), "client", "CLOSE_WAIT")},
			{tracker.ClientSide, tracker.Detail{Kind: tracker.DetailRtxLostRST, State: tracker.Established, N: [3]uint64{5, 31}},
				fmt.Sprintf("%s %s gave up after %d unanswered %s and reset the connection (packet %d); the path was not delivering, so the %s most likely never got the RST (%s, half-open)",
					"client", cl, 5, "retransmission(s)", 31, "server", "ESTABLISHED")},
			{tracker.ServerSide, tracker.Detail{Kind: tracker.DetailKeepaliveLostRST, State: tracker.Established, N: [3]uint64{2, 40}},
				fmt.Sprintf("%s %s gave up after %d unanswered %s and reset the connection (packet %d); the path was not delivering, so the %s most likely never got the RST (%s, half-open)",
					"server", sv, 2, "keepalive probe(s)", 40, "client", "ESTABLISHED")},
		}
		seen := map[tracker.DetailKind]bool{}
		for _, tc := range cases {
			d := tracker.Diagnosis{ID: tc.d.Kind.ID(), Side: tc.side, Detail: tc.d}
			if got := DetailText(c, &d); got != tc.want {
				t.Errorf("%s detail kind %d:\n got %q\nwant %q", d.ID, tc.d.Kind, got, tc.want)
			}
			seen[tc.d.Kind] = true
		}
		for k := tracker.DetailKind(1); k.ID() != ""; k++ {
			if !seen[k] {
				t.Errorf("detail kind %d (%s) has no case here", k, k.ID())
			}
		}
	}
}

func TestAgeSentences(t *testing.T) {
	for d, want := range map[time.Duration]string{tracker.AgeUnknown: "for an unknown time", 0: "for 0µs", 999 * time.Microsecond: "for 999µs",
		time.Millisecond: "for 1ms", 999999 * time.Microsecond: "for 999ms", time.Second: "for 1s", 3*time.Hour + 50*time.Millisecond: "for 3h0m0.1s"} {
		if got := string(appendAge(nil, d)); got != want {
			t.Errorf("age %v: %q, want %q", d, got, want)
		}
	}
}

func TestVerdictSentences(t *testing.T) {
	want := map[tracker.Verdict]string{
		tracker.VerdictNoSocket: "no socket", tracker.VerdictAckMismatch: "ACK does not match the SYN",
		tracker.VerdictAnswersSYN: "answers the SYN", tracker.VerdictAlreadyClosed: "already closed",
		tracker.VerdictSeqUnknown: "sequence unknown, taken as accepted", tracker.VerdictExact: "exact sequence number",
		tracker.VerdictOneBelow: "sequence number one below (after FIN)", tracker.VerdictTimeWait: "TIME_WAIT accepts only the exact sequence number",
		tracker.VerdictHalfOpen: "in window of a half-open connection", tracker.VerdictOutOfWindow: "out of window",
		tracker.VerdictChallenge:  "in window but not exact: draws a challenge ACK (RFC 5961)",
		tracker.VerdictChallenged: "in window but not exact: answered by a challenge ACK (packet 12, RFC 5961)",
		tracker.VerdictLost:       "lost or ignored: the receiver kept sending",
	}
	for v := tracker.VerdictNoSocket; v <= tracker.VerdictLost; v++ {
		if got := string(appendVerdict(nil, v, 12)); got != want[v] || got == "" {
			t.Errorf("verdict %d: %q, want %q", v, got, want[v])
		}
	}
}

func TestEvidenceSentences(t *testing.T) {
	m := tracker.Misfit{TTL: 64, HostTTL: 63}
	cases := map[tracker.EvidenceKind]struct {
		e    tracker.Evidence
		want string
	}{
		tracker.EvidenceTimer:          {tracker.Evidence{State: tracker.TimeWait}, "timer expired since the last packet (TIME_WAIT timer expired (2·MSL))"},
		tracker.EvidenceMidstream:      {tracker.Evidence{}, "handshake not captured: assumed synchronized from mid-connection traffic"},
		tracker.EvidenceNoClientSYN:    {tracker.Evidence{}, "client SYN not captured"},
		tracker.EvidenceAckLost:        {tracker.Evidence{}, "an earlier ACK towards it was lost; the later one is assumed delivered"},
		tracker.EvidenceAckPending:     {tracker.Evidence{}, "an ACK towards it came after an earlier one was lost; its arrival is not confirmed"},
		tracker.EvidenceFinNotCaptured: {tracker.Evidence{}, "its FIN was not captured: inferred from the peer's ACK one past its last byte"},
		tracker.EvidencePeerMissed:     {tracker.Evidence{}, "the peer's packets were partly not captured (acknowledged but never seen)"},
		tracker.EvidenceRSTDelivered:   {tracker.Evidence{}, "RST towards it assumed delivered (exact sequence number, nothing after it)"},
		tracker.EvidenceInFlight: {tracker.Evidence{D: 12345678}, fmt.Sprintf("a packet towards it passed the tap less than its one-way time (%s, half the round trip from the tap) before this instant: not arrived yet",
			time.Duration(12345678).Round(time.Millisecond))},
		tracker.EvidenceFINArrived:      {tracker.Evidence{D: 2 * time.Millisecond}, "the peer's FIN passed the tap more than its one-way time (2ms, half the round trip from the tap) before this instant: arrived, though its ACK cannot be back yet"},
		tracker.EvidenceRtxGaveUp:       {tracker.Evidence{}, fmt.Sprintf("its %s went unanswered and it was silent well past the next one due: its stack gave up (no packet shows it)", "retransmissions")},
		tracker.EvidenceKeepaliveGaveUp: {tracker.Evidence{}, fmt.Sprintf("its %s went unanswered and it was silent well past the next one due: its stack gave up (no packet shows it)", "keepalive probes")},
		tracker.EvidenceUnanswered:      {tracker.Evidence{Count: 4, Packet: 99}, fmt.Sprintf("its last %d retransmissions or probes (the last is packet %d) went unanswered and it has been silent since: if its stack gave up when the next one was due, it is CLOSED already", 4, 99)},
		tracker.EvidenceForgedAs:        {tracker.Evidence{Packet: 8, Misfit: m}, fmt.Sprintf("a middlebox forged a RST in its name (packet %d: %s); it never sent it, and whether the middlebox also reset it is not on the wire", 8, "TTL 64 at the tap, where that host's packets arrive with 63")},
		tracker.EvidenceLostRST:         {tracker.Evidence{Packet: 31, Count: 5}, fmt.Sprintf("the peer's RST (packet %d) followed %d unanswered probe(s) or retransmission(s): the path towards it was not delivering, so the RST is taken as lost", 31, 5)},
		tracker.EvidenceOrphan:          {tracker.Evidence{D: time.Minute}, fmt.Sprintf("FIN_WAIT_2 for over %s: gone by now if its application called close(), still there after shutdown() alone; the wire cannot tell which", time.Minute)},
		tracker.EvidenceOneSided:        {tracker.Evidence{}, "one-sided capture: the peer's packets were not captured (a filter such as 'dst port 80', or an asymmetric tap); the state is a guess from one direction"},
	}
	for k := tracker.EvidenceTimer; k <= tracker.EvidenceOneSided; k++ {
		tc, ok := cases[k]
		if !ok {
			t.Errorf("evidence kind %d has no case here", k)
			continue
		}
		tc.e.Kind = k
		if got := EvidenceText(&tc.e); got != tc.want {
			t.Errorf("evidence kind %d:\n got %q\nwant %q", k, got, tc.want)
		}
	}
	if got := EvidenceText(&tracker.Evidence{}); got != "" {
		t.Errorf("no evidence: %q", got)
	}
}

func TestReasonSentences(t *testing.T) {
	fa := capture.Flags(capture.FIN | capture.ACK)
	cases := map[tracker.Reason]struct {
		e    tracker.Event
		want string
	}{
		tracker.ReasonSentRST:       {tracker.Event{}, "sent RST"},
		tracker.ReasonSentSYNACK:    {tracker.Event{}, "sent SYN-ACK"},
		tracker.ReasonSentSYN:       {tracker.Event{}, "sent SYN"},
		tracker.ReasonAckedPeerFIN:  {tracker.Event{Ack: 4000000000}, "its ACK 4000000000 covers the peer's FIN"},
		tracker.ReasonSentFIN:       {tracker.Event{}, "sent FIN"},
		tracker.ReasonAckedSynAck:   {tracker.Event{Ack: 7}, "ACK 7 acknowledges the SYN-ACK"},
		tracker.ReasonRetransmitted: {tracker.Event{}, "retransmitted what the peer had acknowledged: that ACK was lost"},
		tracker.ReasonSent:          {tracker.Event{Flags: fa}, "sent " + fa.String()},
		tracker.ReasonAcceptedRST:   {tracker.Event{}, "accepted RST"},
		tracker.ReasonSynAcked:      {tracker.Event{Ack: 1}, "ACK 1 acknowledges its SYN"},
		tracker.ReasonFinAcked:      {tracker.Event{Ack: 102, FinSeq: 101}, "ACK 102 covers its FIN (FIN at 101)"},
		tracker.ReasonReceived:      {tracker.Event{Flags: fa}, "received " + fa.String()},
		tracker.ReasonTimer:         {tracker.Event{Old: tracker.SynSent}, "connect() gave up: SYN retries exhausted"},
		tracker.ReasonReplaced:      {tracker.Event{}, "a new SYN reuses the 4-tuple: the old socket is gone"},
	}
	for r := tracker.ReasonSentRST; r <= tracker.ReasonReplaced; r++ {
		tc, ok := cases[r]
		if !ok {
			t.Errorf("reason %d has no case here", r)
			continue
		}
		tc.e.Reason = r
		if got := ReasonText(&tc.e); got != tc.want {
			t.Errorf("reason %d: %q, want %q", r, got, tc.want)
		}
	}
	for old, want := range map[tracker.State]string{tracker.TimeWait: "TIME_WAIT timer expired (2·MSL)",
		tracker.SynReceived: "SYN-ACK retries exhausted: half-open connection dropped", tracker.FinWait2: "timer expired"} {
		if got := ReasonText(&tracker.Event{Reason: tracker.ReasonTimer, Old: old}); got != want {
			t.Errorf("timer of %v: %q, want %q", old, got, want)
		}
	}
}

func TestEndingSentences(t *testing.T) {
	got := []string{}
	for e := tracker.EndedOpen; e <= tracker.EndedFINServer; e++ {
		got = append(got, Ending(e))
	}
	if s := strings.Join(got, "|"); s != "|RST both ways|RST from client|RST from server|FIN both ways|FIN from client|FIN from server" {
		t.Errorf("endings: %s", s)
	}
}

func TestAnnotationComments(t *testing.T) {
	e := tracker.Event{Side: tracker.ServerSide, Old: tracker.SynReceived, New: tracker.Established}
	for names, want := range map[tracker.Naming]string{tracker.NamesRFC: "server SYN_RECEIVED → ESTABLISHED", tracker.NamesLinux: "server SYN-RECV → ESTAB"} {
		if got := ChangeComment(&e, names); got != want {
			t.Errorf("ChangeComment: %q, want %q", got, want)
		}
	}
	if got := WindowComment(tracker.ClientSide, true) + "|" + WindowComment(tracker.ServerSide, false); got != "zero-window: client|window reopened: server" {
		t.Errorf("WindowComment: %q", got)
	}
}
