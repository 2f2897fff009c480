package tracker

import (
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// The kernel recordings (internal/kernellab: reject-reset-*, ips-reset, forged-rst*) are the
// real test of the fingerprint; this pins the rule itself: only a TTL that differs from the
// one an endpoint's packets always arrive with makes a RST forged, and a forged RST acts on
// its receiver but leaves the endpoint it names as it was.
func TestJudgeRSTByTTL(t *testing.T) {
	run := func(rstTTL uint8, mixed bool) *Conn {
		tr := newTestTable(Config{})
		ttl := func(fromClient bool, i int) uint8 {
			if fromClient {
				return 64
			}
			if mixed && i == 4 {
				return 60
			}
			return 63
		}
		add := func(i int, fromClient bool, at time.Duration, f capture.Flags, seq, ack, n uint32, ttl uint8) {
			s := capture.Segment{Time: t0.Add(at), Seq: capture.Seq(seq), Ack: capture.Seq(ack), Flags: f, PayloadLen: n, Window: 1000,
				Packet: uint64(i), TTL: ttl, Opts: capture.Options{Has: capture.HasTimestamps}}
			s.Src, s.Dst = srv, cli
			if fromClient {
				s.Src, s.Dst = cli, srv
			}
			tr.Add(&s)
		}
		add(1, true, 0, S, 100, 0, 0, ttl(true, 1))
		add(2, false, 10*ms, S|A, 500, 101, 0, ttl(false, 2))
		add(3, true, 20*ms, A, 101, 501, 0, ttl(true, 3))
		add(4, false, 30*ms, A|P, 501, 101, 10, ttl(false, 4))
		add(5, true, 40*ms, A, 101, 511, 0, ttl(true, 5))
		// A RST to the client in the server's name, exact sequence, no timestamps.
		s := capture.Segment{Time: t0.Add(50 * ms), Seq: 511, Ack: 101, Flags: R | A, Packet: 6, TTL: rstTTL, Src: srv, Dst: cli}
		tr.Add(&s)
		tr.Finish(t0.Add(time.Second))
		return tr.Conns()[0]
	}
	own := run(63, false)
	if own.Client.State != Closed || own.Server.State != Closed || own.HasDiagnosis(DiagMiddleboxReset) {
		t.Errorf("RST with the server's own TTL: %v/%v %v, want CLOSED/CLOSED, no middlebox-reset", own.Client.State, own.Server.State, own.Diagnoses)
	}
	forged := run(64, false)
	if forged.Client.State != Closed || forged.Server.State != Established || !forged.Server.Inferred || !forged.HasDiagnosis(DiagMiddleboxReset) {
		t.Fatalf("RST with another TTL: %v/%v (server inferred %v) %v, want CLOSED/ESTABLISHED?, middlebox-reset", forged.Client.State, forged.Server.State, forged.Server.Inferred, forged.Diagnoses)
	}
	for _, d := range forged.Diagnoses {
		m := d.Detail.Misfit
		if d.ID == DiagMiddleboxReset && (d.Side != ClientSide || d.Detail.N[0] != 6 || m.TTL != 64 || m.HostTTL != 63 || m.Flags&MisfitNoTimestamps == 0 || m.Flags&MisfitHopLimit != 0) {
			t.Errorf("middlebox-reset: side %v, detail %+v, want packet 6, TTL 64 where the server's arrive with 63, no timestamps", d.Side, d.Detail)
		}
		if d.ID == DiagReset {
			t.Errorf("a forged RST is not the server's reset: %+v", d.Detail)
		}
	}
	if m := run(64, true); m.HasDiagnosis(DiagMiddleboxReset) {
		t.Errorf("the server's TTL varies: distance proves nothing, yet middlebox-reset: %v", m.Diagnoses)
	}
}
