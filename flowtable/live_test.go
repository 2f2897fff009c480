package flowtable

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/tracker"
)

// Tick and Release on recorded kernel captures, as the live loop calls them.

func feed(t *testing.T, tr *Table, scenario string) []capture.Segment {
	t.Helper()
	src, err := capture.OpenFiles([]string{filepath.Join("..", "testdata", "pcaps", "kernel", scenario, "capture.pcap")}, capture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var segs []capture.Segment
	var seg capture.Segment
	for src.Next(&seg) {
		tr.Add(&seg)
		segs = append(segs, seg)
	}
	return segs
}

// TestTickRunsTimersWithoutPackets: a SYN nobody answers turns CLOSED when the SYN retry budget
// runs out, with no packet after it, and the event is stamped at the deadline.
func TestTickRunsTimersWithoutPackets(t *testing.T) {
	var events []tracker.Event
	tr := New(Config{OnEvent: func(e tracker.Event) { events = append(events, e) }})
	segs := feed(t, tr, "syn-dropped")
	c := tr.Conns()[0]
	first := segs[0].Time
	deadline := first.Add(linuxProfile(t).SynTimeout) // linux: the SYN retry budget from the first SYN
	events = nil

	tr.Tick(deadline.Add(-time.Second))
	if c.Client.State != tracker.SynSent || len(events) != 0 {
		t.Fatalf("a second before the deadline: client %v, %d events", c.Client.State, len(events))
	}
	if !c.HasDiagnosis(tracker.DiagSynUnanswered) {
		t.Errorf("Tick did not diagnose: %v", c.Diagnoses)
	}
	tr.Tick(deadline.Add(time.Second))
	if c.Client.State != tracker.Closed || len(events) != 1 || !events[0].Time.Equal(deadline) || events[0].Packet != 0 {
		t.Fatalf("after the deadline: client %v, events %+v; want one timer event at %v", c.Client.State, events, deadline)
	}
	if !tr.Now.Equal(deadline.Add(time.Second)) {
		t.Errorf("Tick left the clock at %v", tr.Now)
	}
	// A tick before the last packet leaves the connection alone.
	tr2 := New(Config{})
	feed(t, tr2, "syn-dropped")
	before := tr2.Conns()[0].Client
	tr2.Tick(first)
	if tr2.Conns()[0].Client.State != before.State || tr2.Now.Before(segs[len(segs)-1].Time) {
		t.Errorf("a tick before the last packet changed the connection or moved the clock back")
	}
}

// TestReleaseFinished: connections closed at both ends are handed out after the quiet time and
// forgotten; open ones stay; IDs keep counting.
func TestReleaseFinished(t *testing.T) {
	tr := New(Config{})
	segs := feed(t, tr, "mixed-40")
	last := segs[len(segs)-1].Time
	total := len(tr.Conns())
	tr.Tick(last.Add(time.Second))
	if n := tr.Release(last.Add(time.Second), 10*time.Second, nil); n != 0 {
		t.Fatalf("released %d connections before the quiet time", n)
	}
	var released []*tracker.Conn
	at := last.Add(11 * time.Second)
	tr.Tick(at)
	n := tr.Release(at, 10*time.Second, func(c *tracker.Conn) { released = append(released, c) })
	if n == 0 || n != len(released) || len(tr.Conns()) != total-n {
		t.Fatalf("released %d (%d handed out), %d of %d left", n, len(released), len(tr.Conns()), total)
	}
	for _, c := range released {
		if c.Client.State != tracker.Closed || c.Server.State != tracker.Closed {
			t.Errorf("released #%d in %v/%v", c.ID, c.Client.State, c.Server.State)
		}
	}
	for _, c := range tr.Conns() {
		if c.Client.State == tracker.Closed && c.Server.State == tracker.Closed {
			t.Errorf("#%d closed at both ends but kept", c.ID)
		}
	}
	// A new packet on a released 4-tuple is a new connection with a new ID.
	seg := segs[0]
	for _, s := range segs {
		if s.Src == released[0].Client.Addr || s.Dst == released[0].Client.Addr {
			seg = s
			break
		}
	}
	seg.Time = at.Add(time.Second)
	tr.Add(&seg)
	got := tr.Conns()[len(tr.Conns())-1]
	if got.ID != uint64(total+1) {
		t.Errorf("new connection after a release has ID %d, want %d", got.ID, total+1)
	}
}

// TestReleaseBoundsMemory: ten simulated minutes of 100 new connections a second, each closed
// cleanly (its client then in TIME_WAIT for 60 s) or refused, ticked once a second as the live
// loop does. The table holds only what is open or waiting for its timer: about 100 × (60 s of
// TIME_WAIT + the quiet time), not the 60,000 connections seen.
func TestReleaseBoundsMemory(t *testing.T) {
	tr := New(Config{})
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	const perSecond, seconds = 100, 600
	const quiet = 10 * time.Second
	peak, released := 0, 0
	n := 0
	for s := 0; s < seconds; s++ {
		for i := 0; i < perSecond; i++ {
			n++
			at := start.Add(time.Duration(s)*time.Second + time.Duration(i)*time.Millisecond)
			cl := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + n/60000)}), uint16(1024+n%60000))
			var pk []pkt
			if n%10 == 0 {
				pk = []pkt{{true, 0, S, 100, 0, 0}, {false, time.Millisecond, R | A, 0, 101, 0}}
			} else {
				pk = []pkt{{true, 0, S, 100, 0, 0}, {false, 1, S | A, 500, 101, 0}, {true, 2, A, 101, 501, 0},
					{true, 3, P | A, 101, 501, 50}, {false, 4, P | A, 501, 151, 80},
					{true, 5, F | A, 151, 581, 0}, {false, 6, F | A, 581, 152, 0}, {true, 7, A, 152, 582, 0}}
			}
			for _, p := range pk {
				seg := capture.Segment{Time: at.Add(p.at), Seq: capture.Seq(p.seq), Ack: capture.Seq(p.ack), Flags: p.flags, PayloadLen: p.n, Window: 1000}
				if p.fromClient {
					seg.Src, seg.Dst = cl, srv
				} else {
					seg.Src, seg.Dst = srv, cl
				}
				tr.Add(&seg)
			}
		}
		now := start.Add(time.Duration(s+1) * time.Second)
		tr.Tick(now)
		released += tr.Release(now, quiet, nil)
		peak = max(peak, len(tr.Conns()))
	}
	bound := perSecond * (60 + 10 + 2)
	if peak > bound {
		t.Errorf("the table peaked at %d connections, want at most %d", peak, bound)
	}
	if released+len(tr.Conns()) != n || uint64(n) != tr.Stats().Connections {
		t.Errorf("%d connections, %d released + %d kept", n, released, len(tr.Conns()))
	}
	t.Logf("%d connections over %d s: peak %d in the table, %d released", n, seconds, peak, released)
}

func linuxProfile(t *testing.T) tracker.Profile {
	p, err := tracker.LookupProfile("linux")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
