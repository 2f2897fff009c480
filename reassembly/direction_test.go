package reassembly

import (
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

func TestSeqCompareAcrossWrap(t *testing.T) {
	cases := []struct {
		a, b capture.Seq
		lt   bool
	}{
		{1, 2, true},
		{2, 1, false},
		{0xFFFFFFF0, 0x10, true}, // 0x10 is after the wrap
		{0x10, 0xFFFFFFF0, false},
		{0x7FFFFFFF, 0x80000000, true},
		{5, 5, false},
	}
	for _, c := range cases {
		if got := c.a.LT(c.b); got != c.lt {
			t.Errorf("%#x < %#x = %v, want %v", uint32(c.a), uint32(c.b), got, c.lt)
		}
		if c.a != c.b && c.a.GT(c.b) == c.lt {
			t.Errorf("%#x > %#x inconsistent with <", uint32(c.a), uint32(c.b))
		}
	}
	if d := capture.Seq(0x10).Sub(0xFFFFFFF0); d != 0x20 {
		t.Errorf("distance across wrap = %d, want 32", d)
	}
	if !capture.Seq(3).InWindow(0xFFFFFFFE, 10) || capture.Seq(20).InWindow(0xFFFFFFFE, 10) {
		t.Error("InWindow wrong across wrap")
	}
}

type seg struct {
	flags capture.Flags
	seq   uint32
	ack   uint32
	n     uint32
	win   uint16
}

var t0 = time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)

func feed(t *testing.T, isnA, isnB uint32, steps []struct {
	fromA bool
	s     seg
	want  Kind
}) (*Direction, *Direction) {
	t.Helper()
	var a, b Direction
	for i, st := range steps {
		s := capture.Segment{Time: t0.Add(time.Duration(i) * time.Millisecond), Seq: capture.Seq(st.s.seq), Ack: capture.Seq(st.s.ack),
			Flags: st.s.flags, PayloadLen: st.s.n, Window: st.s.win}
		var got Kind
		if st.fromA {
			got = a.Observe(&s, &b)
		} else {
			got = b.Observe(&s, &a)
		}
		if got != st.want {
			t.Fatalf("step %d (%v seq %d len %d): kind %v, want %v", i, st.s.flags, st.s.seq, st.s.n, got, st.want)
		}
	}
	return &a, &b
}

func TestClassifyAcrossWrap(t *testing.T) {
	const S, A, F = capture.SYN, capture.ACK, capture.FIN
	isnA := uint32(0xFFFFFF00) // the client's data crosses 2^32
	isnB := uint32(1000)
	steps := []struct {
		fromA bool
		s     seg
		want  Kind
	}{
		{true, seg{S, isnA, 0, 0, 65535}, New},
		{false, seg{S | A, isnB, isnA + 1, 0, 65535}, New},
		{true, seg{A, isnA + 1, isnB + 1, 0, 1000}, AckOnly},
		{true, seg{A, isnA + 1, isnB + 1, 200, 1000}, New},       // 0xFFFFFF01..0x000000C9: wraps
		{true, seg{A, isnA + 1 + 200, isnB + 1, 100, 1000}, New}, // after the wrap
		{true, seg{A, isnA + 1, isnB + 1, 200, 1000}, Retransmission},
		{true, seg{A, isnA + 1 + 500, isnB + 1, 100, 1000}, Gap}, // 200 bytes missing
		{true, seg{A, isnA + 1 + 300, isnB + 1, 100, 1000}, OutOfOrder},
		{false, seg{A, isnB + 1, isnA + 1 + 400, 0, 1000}, AckOnly},
		{true, seg{A, isnA + 1 + 399, isnB + 1, 0, 1000}, AckOnly}, // not a keepalive: 500..600 unacked
		{false, seg{A, isnB + 1, isnA + 1 + 600, 0, 1000}, AckOnly},
		{true, seg{A, isnA + 1 + 599, isnB + 1, 0, 1000}, Keepalive},
		{false, seg{A, isnB + 1, isnA + 1 + 600, 0, 0}, AckOnly}, // zero window
		{true, seg{A, isnA + 1 + 599, isnB + 1, 0, 1000}, WindowProbe},
		{true, seg{A | F, isnA + 1 + 600, isnB + 1, 0, 1000}, New},
	}
	a, b := feed(t, isnA, isnB, steps)
	if !a.FinSeen || a.FinSeq != capture.Seq(isnA+1+600) {
		t.Errorf("FIN at %d, want %d", a.FinSeq, isnA+1+600)
	}
	if a.Holes() != 0 {
		t.Errorf("%d holes left; the out-of-order segment and the ACK should have closed them", a.Holes())
	}
	if a.MissedBytes != 100 {
		t.Errorf("missed %d bytes, want 100 (400..500 never captured, acked by 600)", a.MissedBytes)
	}
	if a.Retransmits != 1 || a.OutOfOrders != 1 || a.Keepalives != 1 || a.WindowProbes != 1 {
		t.Errorf("counters: retrans %d ooo %d keepalive %d probe %d", a.Retransmits, a.OutOfOrders, a.Keepalives, a.WindowProbes)
	}
	if !b.ZeroWindow || b.ZeroWindows != 1 {
		t.Errorf("zero window not recorded on the receiver")
	}
}

func TestAckBeyondCaptureIsGap(t *testing.T) {
	var a, b Direction
	s := capture.Segment{Time: t0, Seq: 100, Ack: 5000, Flags: capture.ACK, PayloadLen: 10}
	a.Observe(&s, &b)
	r := capture.Segment{Time: t0.Add(time.Millisecond), Seq: 5000, Ack: 160, Flags: capture.ACK}
	b.Observe(&r, &a)
	if a.MissedBytes != 50 || a.Next != 160 {
		t.Errorf("missed %d next %d, want 50 and 160", a.MissedBytes, a.Next)
	}
	// An absurd ACK (crafted) does not move anything.
	r2 := capture.Segment{Time: t0.Add(2 * time.Millisecond), Seq: 5000, Ack: 160 + 1<<30, Flags: capture.ACK}
	b.Observe(&r2, &a)
	if a.Next != 160 {
		t.Errorf("implausible ACK moved Next to %d", a.Next)
	}
}

func TestDuplicateFromSpanPort(t *testing.T) {
	var a, b Direction
	s := capture.Segment{Time: t0, Seq: 1, Ack: 1, Flags: capture.ACK, PayloadLen: 100}
	if k := a.Observe(&s, &b); k != New {
		t.Fatalf("first copy: %v", k)
	}
	s.Time = s.Time.Add(20 * time.Microsecond)
	if k := a.Observe(&s, &b); k != Duplicate {
		t.Fatalf("second copy 20µs later: %v, want duplicate", k)
	}
	s.Time = s.Time.Add(300 * time.Millisecond)
	if k := a.Observe(&s, &b); k != Retransmission {
		t.Fatalf("copy 300ms later: %v, want retransmission", k)
	}
}

// A SPAN port mirroring both sides of a router interleaves the copies of a burst: A B A' B'
// (each copy after the other original). Both copies are duplicates; a copy older than
// dupDepth distinct segments, or later than the window, is not.
func TestDuplicatesInterleaved(t *testing.T) {
	var a, b Direction
	seg := func(seq uint32, at time.Duration) capture.Segment {
		return capture.Segment{Time: t0.Add(at), Seq: capture.Seq(seq), Ack: 1, Flags: capture.ACK, PayloadLen: 100}
	}
	us := time.Microsecond
	for i, c := range []struct {
		s    capture.Segment
		want Kind
	}{
		{seg(1, 0), New},
		{seg(101, 5*us), New},
		{seg(1, 30*us), Duplicate},   // A'
		{seg(101, 35*us), Duplicate}, // B'
		{seg(201, 40*us), New},
		{seg(301, 45*us), New},
		{seg(401, 50*us), New},
		{seg(501, 55*us), New},
		{seg(101, 60*us), Retransmission},  // B again, but 4 distinct segments later: not a copy
		{seg(501, 400*us), Retransmission}, // too late for a copy
	} {
		if k := a.Observe(&c.s, &b); k != c.want {
			t.Errorf("segment %d (seq %d at %v): %v, want %v", i, c.s.Seq, c.s.Time.Sub(t0), k, c.want)
		}
	}
	if a.Duplicates != 2 {
		t.Errorf("%d duplicates, want 2", a.Duplicates)
	}
}
