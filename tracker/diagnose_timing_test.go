package tracker

import (
	"testing"
	"time"
)

// playUntil is play, with the connections evaluated at end (after t0) rather than at the last
// packet: the capture went on, silent for them.
func playUntil(t *testing.T, end time.Duration, pkts []pkt) *testTable {
	t.Helper()
	tr := newTestTable(Config{Profile: profiles["linux"]})
	feedPkts(tr, pkts)
	tr.Finish(t0.Add(end))
	return tr
}

// Issue 16: a diagnosis is true when it is printed. Silence is a finding only once the
// retransmission the silence should have caused was due and did not come.
func TestDiagnosisWaitsForTheRetransmission(t *testing.T) {
	syn := []pkt{{true, 0, S, 100, 0, 0}}
	synRetried := []pkt{{true, 0, S, 100, 0, 0}, {true, time.Second, S, 100, 0, 0}, {true, 3 * time.Second, S, 100, 0, 0}}
	lastAck := with( // the server closes second; its FIN is never acknowledged
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 40 * ms, A, 501, 102, 0},
		pkt{false, 50 * ms, A | F, 501, 102, 0},
	)
	synAck := []pkt{{true, 0, S, 100, 0, 0}, {false, 10 * ms, S | A, 500, 101, 0}}
	for _, tc := range []struct {
		name   string
		pkts   []pkt
		end    time.Duration
		diag   string
		wanted bool
	}{
		{"SYN 29 ms ago: in progress", syn, 29 * ms, DiagSynUnanswered, false},
		{"SYN 0.9 s ago: its retransmission (1 s) is not due", syn, 900 * ms, DiagSynUnanswered, false},
		{"SYN 2 s ago, not retransmitted", syn, 2 * time.Second, DiagSynUnanswered, true},
		{"third SYN 1 s ago: the next comes 4 s after it", synRetried, 4 * time.Second, DiagSynUnanswered, false},
		{"third SYN 6 s ago", synRetried, 9 * time.Second, DiagSynUnanswered, true},
		{"SYN given up on (the retry budget ran out)", syn, 200 * time.Second, DiagSynUnanswered, true},
		{"LAST_ACK for 0µs: in progress", lastAck, 50 * ms, DiagFinUnacknowledged, false},
		{"LAST_ACK, FIN not retransmitted for 2 s", lastAck, 2050 * ms, DiagFinUnacknowledged, true},
		{"SYN-ACK 10 ms ago: handshake in progress", synAck, 20 * ms, DiagHandshakeIncomplete, false},
		{"SYN-ACK not retransmitted for 2 s", synAck, 2 * time.Second, DiagHandshakeIncomplete, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := playUntil(t, tc.end, tc.pkts).Conns()[0]
			if got := c.HasDiagnosis(tc.diag); got != tc.wanted {
				t.Errorf("%s at +%v: %v, want %v (client %v, server %v, diagnoses %v)", tc.diag, tc.end, got, tc.wanted,
					c.Client.State, c.Server.State, c.Diagnoses)
			}
		})
	}
}
