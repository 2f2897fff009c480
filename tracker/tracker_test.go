package tracker

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/reassembly"
	"github.com/tcpstate/tcpstate/zeek"
)

// These hand-built sequences cover what a kernel cannot be made to do on demand (lost ACKs
// behind the tap, forged resets); the recorded kernel captures in testdata/pcaps are the main
// test (internal/kernellab).

var (
	cli = netip.MustParseAddrPort("192.0.2.1:40000")
	srv = netip.MustParseAddrPort("198.51.100.1:80")
	t0  = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
)

const (
	S = capture.SYN
	A = capture.ACK
	F = capture.FIN
	R = capture.RST
	P = capture.PSH
)

type pkt struct {
	fromClient bool
	at         time.Duration
	flags      capture.Flags
	seq, ack   uint32
	n          uint32
}

func play(t *testing.T, pkts []pkt) *testTable {
	t.Helper()
	tr := newTestTable(Config{})
	feedPkts(tr, pkts)
	tr.Finish(time.Time{})
	return tr
}

// feedPkts gives the tracker the packets, as from a capture starting at t0.
func feedPkts(tr *testTable, pkts []pkt) {
	for i, p := range pkts {
		s := capture.Segment{Time: t0.Add(p.at), Seq: capture.Seq(p.seq), Ack: capture.Seq(p.ack), Flags: p.flags, PayloadLen: p.n,
			Window: 1000, Packet: uint64(i + 1)}
		if p.fromClient {
			s.Src, s.Dst = cli, srv
		} else {
			s.Src, s.Dst = srv, cli
		}
		tr.Add(&s)
	}
}

func want(t *testing.T, tr *testTable, id int, client, server State, diags ...string) {
	t.Helper()
	c := tr.Conns()[id-1]
	if c.Client.State != client || c.Server.State != server {
		t.Errorf("conn %d: client %v server %v, want %v %v", id, c.Client.State, c.Server.State, client, server)
	}
	for _, d := range diags {
		if !c.HasDiagnosis(d) {
			var got []string
			for _, x := range c.Diagnoses {
				got = append(got, x.ID)
			}
			t.Errorf("conn %d: missing diagnosis %s (has %s)", id, d, strings.Join(got, ","))
		}
	}
}

const ms = time.Millisecond

var handshake = []pkt{
	{true, 0, S, 100, 0, 0},
	{false, 10 * ms, S | A, 500, 101, 0},
	{true, 20 * ms, A, 101, 501, 0},
}

func with(extra ...pkt) []pkt { return append(append([]pkt(nil), handshake...), extra...) }

func TestNormalCloseClientFirst(t *testing.T) {
	tr := play(t, with(
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 40 * ms, A, 501, 102, 0},
		pkt{false, 50 * ms, A | F, 501, 102, 0},
		pkt{true, 60 * ms, A, 102, 502, 0},
	))
	want(t, tr, 1, TimeWait, Closed)
	if z := tr.Conns()[0].Zeek; z.ConnState() != "SF" || z.History != "ShAFaf" {
		t.Errorf("zeek %s %s, want SF ShAFaf", z.ConnState(), z.History)
	}
}

func TestTimeWaitExpires(t *testing.T) {
	tr := play(t, with(
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 40 * ms, A | F, 501, 102, 0},
		pkt{true, 60 * ms, A, 102, 502, 0},
		// an unrelated connection keeps the capture going past 60 s
	))
	tr.Finish(t0.Add(61 * time.Second))
	want(t, tr, 1, Closed, Closed)
	if !tr.Conns()[0].Client.Inferred {
		t.Error("a state reached by timer must be marked inferred")
	}
}

func TestLostAckOfFinBehindTap(t *testing.T) {
	// The server's ACK of the client's FIN passes the tap but never arrives: the client
	// retransmits its FIN, so it is still in FIN_WAIT_1.
	tr := playUntil(t, 10*time.Second, with( // long enough for the FIN's next retransmission
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 40 * ms, A, 501, 102, 0},
		pkt{true, 300 * ms, A | F, 101, 501, 0},
	))
	want(t, tr, 1, FinWait1, CloseWait, DiagFinUnacknowledged)
}

func TestLostFinalAckOfHandshake(t *testing.T) {
	// The client's ACK is seen but the server retransmits its SYN-ACK: it never got it.
	tr := playUntil(t, 10*time.Second, with(pkt{false, 1020 * ms, S | A, 500, 101, 0}))
	want(t, tr, 1, Established, SynReceived, DiagHandshakeIncomplete)
}

func TestSimultaneousClose(t *testing.T) {
	tr := play(t, with(
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 30 * ms, A | F, 501, 101, 0}, // does not ack the client's FIN: crossed
		pkt{true, 40 * ms, A, 102, 502, 0},
		pkt{false, 40 * ms, A, 502, 102, 0},
	))
	want(t, tr, 1, TimeWait, TimeWait)
}

func TestRefused(t *testing.T) {
	tr := play(t, []pkt{{true, 0, S, 100, 0, 0}, {false, ms, R | A, 0, 101, 0}})
	want(t, tr, 1, Closed, Closed, DiagRefused)
}

func TestForgedResets(t *testing.T) {
	est := with(pkt{true, 30 * ms, A | P, 101, 501, 10})
	// Out of window: ignored by the server. Its sequence number is not the client's either:
	// the client never sent it (forged on the path), so the client is untouched too.
	tr := play(t, append(append([]pkt(nil), est...), pkt{true, 40 * ms, R, 900000, 0, 0}))
	want(t, tr, 1, Established, Established, DiagRstIgnored)
	// In window but not exact: challenge ACK, ignored.
	tr = play(t, append(append([]pkt(nil), est...), pkt{true, 40 * ms, R, 111 + 50, 0, 0}))
	want(t, tr, 1, Established, Established, DiagRstIgnored)
	// Exact: accepted.
	tr = play(t, append(append([]pkt(nil), est...), pkt{true, 40 * ms, R, 111, 0, 0}))
	want(t, tr, 1, Closed, Closed, DiagReset)
}

func TestPortReuseAfterTimeWait(t *testing.T) {
	close := with(
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 40 * ms, A | F, 501, 102, 0},
		pkt{true, 50 * ms, A, 102, 502, 0},
	)
	tr := play(t, append(close, pkt{true, 2 * time.Second, S, 9000, 0, 0}, pkt{false, 2010 * ms, S | A, 7000, 9001, 0},
		pkt{true, 2020 * ms, A, 9001, 7001, 0}))
	if n := len(tr.Conns()); n != 2 {
		t.Fatalf("%d instances, want 2", n)
	}
	want(t, tr, 1, Closed, Closed)
	want(t, tr, 2, Established, Established, DiagPortReused)
	if tr.Conns()[1].Reuses != 1 {
		t.Error("new instance not linked to the old one")
	}
}

func TestSynRetransmissionIsSameInstance(t *testing.T) {
	tr := playUntil(t, 10*time.Second, []pkt{{true, 0, S, 100, 0, 0}, {true, time.Second, S, 100, 0, 0}, {true, 3 * time.Second, S, 100, 0, 0}})
	if len(tr.Conns()) != 1 {
		t.Fatalf("%d instances, want 1", len(tr.Conns()))
	}
	want(t, tr, 1, SynSent, Closed, DiagSynUnanswered)
}

func TestMidstreamHalfClose(t *testing.T) {
	tr := play(t, []pkt{
		{false, 0, A | P, 500, 100, 20},
		{true, ms, A, 100, 520, 0},
		{false, 2 * ms, A | F, 520, 100, 0},
		{true, 3 * ms, A, 100, 521, 0},
	})
	want(t, tr, 1, CloseWait, FinWait2, DiagMidstream, DiagHalfClosed)
	c := tr.Conns()[0]
	if c.Server.Addr != srv || !c.Client.Inferred {
		t.Errorf("port 80 should be the server (got %v), states inferred", c.Server.Addr)
	}
}

func TestFinMissingFromCapture(t *testing.T) {
	// The client's FIN is not in the capture, but the server's ACK is one past the client's
	// last byte: the client sent a FIN.
	tr := play(t, with(
		pkt{true, 30 * ms, A | P, 101, 501, 10},
		pkt{false, 40 * ms, A, 501, 112, 0},
		pkt{false, 50 * ms, A | F, 501, 112, 0},
		pkt{true, 60 * ms, A, 112, 502, 0},
	))
	want(t, tr, 1, TimeWait, Closed, DiagCaptureGap)
}

func TestFinAckLostOnceThenDelivered(t *testing.T) {
	// The server's ACK of the client's FIN is lost once (the client retransmits its FIN), then
	// the re-ACK arrives: one loss is chance, the client is in FIN_WAIT_2.
	tr := play(t, with(
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 40 * ms, A, 501, 102, 0},
		pkt{true, 240 * ms, A | F, 101, 501, 0},
		pkt{false, 241 * ms, A, 501, 102, 0},
	))
	want(t, tr, 1, FinWait2, CloseWait)
	// Lost twice: the path drops them; the third ACK is not assumed delivered.
	tr = play(t, with(
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 40 * ms, A, 501, 102, 0},
		pkt{true, 240 * ms, A | F, 101, 501, 0},
		pkt{false, 241 * ms, A, 501, 102, 0},
		pkt{true, 650 * ms, A | F, 101, 501, 0},
		pkt{false, 651 * ms, A, 501, 102, 0},
	))
	want(t, tr, 1, FinWait1, CloseWait)
}

func TestCrossingRetransmissionsProveNoLoss(t *testing.T) {
	// The server's FIN (which acks the client's FIN) is lost; both retransmit at the same
	// instant, so the client's retransmission crossed the server's and proves nothing.
	tr := play(t, with(
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 40 * ms, A | F, 501, 102, 0},
		pkt{false, 250 * ms, A | F, 501, 102, 0},
		pkt{true, 250*ms + 1000, A | F, 101, 501, 0},
		pkt{true, 251 * ms, A, 102, 502, 0},
	))
	want(t, tr, 1, TimeWait, Closed)
}

func TestChallengeACKRecognised(t *testing.T) {
	est := with(pkt{true, 30 * ms, A | P, 101, 501, 10})
	tr := play(t, append(est,
		pkt{true, 40 * ms, R, 111 + 50, 0, 0}, // in window, not exact
		pkt{false, 41 * ms, A, 501, 111, 0},   // the server's challenge ACK at its RCV.NXT
	))
	want(t, tr, 1, Established, Established, DiagRstIgnored)
	var detail Detail
	for _, d := range tr.Conns()[0].Diagnoses {
		if d.ID == DiagRstIgnored {
			detail = d.Detail
		}
	}
	if detail.Kind != DetailRstIgnored || detail.Verdict != VerdictChallenged || detail.N[0] != 5 || detail.N[1] != 6 {
		t.Errorf("challenge ACK (packet 6) to the RST (packet 5) not recognised: %+v", detail)
	}
}

func TestFinWait2PastOrphanTimeoutIsInferred(t *testing.T) {
	tr := play(t, with(
		pkt{true, 30 * ms, A | F, 101, 501, 0},
		pkt{false, 40 * ms, A, 501, 102, 0},
	))
	c := tr.Conns()[0]
	if c.Client.State != FinWait2 || c.Client.Inferred {
		t.Fatalf("right after the close: %v inferred=%v", c.Client.State, c.Client.Inferred)
	}
	tr.Finish(t0.Add(2 * time.Minute))
	if c.Client.State != FinWait2 || !c.Client.Inferred || c.Client.Evidence != (Evidence{Kind: EvidenceOrphan, D: time.Minute}) {
		t.Errorf("two minutes later: %v inferred=%v %+v, want FIN_WAIT_2 past the linux profile's orphan timeout (1m)", c.Client.State, c.Client.Inferred, c.Client.Evidence)
	}
}

// testTable is the least flow table that drives the engine the way package flowtable's does
// without streaming: the current instance of each 4-tuple, a new one when StartsNewInstance
// says a SYN begins one, every instance kept. (flowtable's own tests hold its streaming,
// packing and eviction to this same keep-everything behaviour.)
type testTable struct {
	tr    *Tracker
	cur   map[[2]netip.AddrPort]*Conn
	conns []*Conn
	Now   time.Time
	stats struct{ Segments, Connections, Duplicates uint64 }
}

func newTestTable(cfg Config) *testTable {
	return &testTable{tr: New(cfg), cur: map[[2]netip.AddrPort]*Conn{}}
}

func tupleKey(a, b netip.AddrPort) [2]netip.AddrPort {
	if a.Compare(b) > 0 {
		a, b = b, a
	}
	return [2]netip.AddrPort{a, b}
}

func (ft *testTable) current(src, dst netip.AddrPort) *Conn { return ft.cur[tupleKey(src, dst)] }

func (ft *testTable) Add(s *capture.Segment) {
	ft.stats.Segments++
	if s.Time.After(ft.Now) {
		ft.Now = s.Time
		ft.tr.Advance(s.Time)
	}
	k := tupleKey(s.Src, s.Dst)
	c := ft.cur[k]
	if c == nil || ft.tr.StartsNewInstance(c, s) {
		n := &Conn{}
		ft.stats.Connections++
		ft.tr.Start(n, s, ft.stats.Connections)
		if c != nil {
			ft.tr.Link(c, n, s)
		}
		ft.cur[k], c = n, n
		ft.conns = append(ft.conns, n)
	}
	if ft.tr.Apply(c, s, false) == reassembly.Duplicate {
		ft.stats.Duplicates++
	}
	c.Zeek.Observe(s, zeek.Side(c.sideOf(s)))
}

func (ft *testTable) Finish(now time.Time) {
	if now.IsZero() {
		now = ft.Now
	}
	for _, c := range ft.conns {
		ft.tr.Evaluate(c, now)
	}
}

func (ft *testTable) Conns() []*Conn { return ft.conns }

func (ft *testTable) Stats() struct{ Segments, Connections, Duplicates uint64 } { return ft.stats }
