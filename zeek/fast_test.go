package zeek

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// refObserve is Observe without its shortcuts (timerDue, fastPacket): every segment goes
// through expired, isReuse and packet.
func (z *View) refObserve(seg *capture.Segment, from Side) {
	t := capture.TimeOf(seg.Time)
	var r *zrow
	if n := len(z.rows); n > 0 {
		r = z.rows[n-1]
		if r.expired(t) || r.isReuse(seg, from) {
			r = nil
		}
	}
	if r == nil {
		var old *zrow
		if n := len(z.rows); n >= MaxRows {
			old = z.rows[1]
			copy(z.rows[1:], z.rows[2:])
			z.rows = z.rows[:n-1]
			z.RowsDropped++
		}
		r = newZrow(z.cfg, seg, from, old, t)
		z.rows = append(z.rows, r)
	}
	r.packet(seg, from, t)
}

func cloneZeekView(z *View) *View {
	c := *z
	c.rows = make([]*zrow, len(z.rows))
	for i, r := range z.rows {
		x := *r
		x.history = append([]byte(nil), r.history...)
		x.expireAt = append([]capture.Time(nil), r.expireAt...)
		for j := range x.ep {
			x.ep[j].re.pending = append([]span(nil), r.ep[j].re.pending...)
		}
		c.rows[i] = &x
	}
	return &c
}

// sameZeekView compares two views field by field (empty slices equal nil ones).
func sameZeekView(a, b *View) bool {
	if a.RowsDropped != b.RowsDropped || len(a.rows) != len(b.rows) {
		return false
	}
	norm := func(r *zrow) zrow {
		x := *r
		x.cfg = nil
		if len(x.history) == 0 {
			x.history = nil
		}
		if len(x.expireAt) == 0 {
			x.expireAt = nil
		}
		for j := range x.ep {
			if len(x.ep[j].re.pending) == 0 {
				x.ep[j].re.pending = nil
			}
		}
		return x
	}
	for i := range a.rows {
		if !reflect.DeepEqual(norm(a.rows[i]), norm(b.rows[i])) {
			return false
		}
	}
	return true
}

func dumpZeekView(z *View) string {
	s := fmt.Sprintf("dropped %d, %d rows\n", z.RowsDropped, len(z.rows))
	for _, r := range z.rows {
		x := *r
		x.cfg = nil
		s += fmt.Sprintf("%+v history %q\n", x, r.history)
	}
	return s
}

// zeekRandomSegment makes a segment from side from, near the sequence numbers in play, so that
// every path of packet is taken: handshakes, data in and out of order, retransmissions, gaps,
// closes, resets, zero windows, bad checksums, timers running out.
func zeekRandomSegment(rng *rand.Rand, from Side, next *[2]uint32, now *time.Time, ports [2]uint16) capture.Segment {
	addrs := [2]netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	switch x := rng.IntN(100); {
	case x < 70:
		*now = now.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
	case x < 90:
		*now = now.Add(time.Duration(rng.IntN(8000)) * time.Millisecond)
	case x < 97:
		*now = now.Add(time.Duration(rng.IntN(400)) * time.Second)
	default:
		*now = now.Add(time.Duration(rng.IntN(7200)) * time.Second)
	}
	var f capture.Flags
	switch x := rng.IntN(100); {
	case x < 45:
		f = capture.ACK
	case x < 55:
		f = capture.ACK | capture.PSH
	case x < 62:
		f = capture.SYN
	case x < 68:
		f = capture.SYN | capture.ACK
	case x < 75:
		f = capture.FIN | capture.ACK
	case x < 79:
		f = capture.RST
	case x < 83:
		f = capture.RST | capture.ACK
	case x < 86:
		f = capture.FIN
	case x < 90:
		f = 0
	default:
		f = capture.Flags(rng.IntN(256))
	}
	var n uint32
	if rng.IntN(2) == 0 {
		n = uint32(rng.IntN(1500))
	}
	if rng.IntN(20) == 0 {
		n = uint32(rng.IntN(100000))
	}
	seq := next[from]
	switch x := rng.IntN(100); {
	case x < 10:
		seq -= uint32(rng.IntN(3000)) // retransmission
	case x < 18:
		seq += uint32(rng.IntN(30000)) // a hole
	case x < 20:
		seq = rng.Uint32()
	case x < 22:
		seq += 1 << 31
	}
	ack := next[1-from]
	switch x := rng.IntN(100); {
	case x < 15:
		ack -= uint32(rng.IntN(3000))
	case x < 25:
		ack += uint32(rng.IntN(30000))
	case x < 27:
		ack = rng.Uint32()
	case x < 29:
		ack = 0
	}
	if d := int32(seq + n - next[from]); d > 0 && rng.IntN(4) != 0 {
		next[from] = seq + n
		if f&(capture.SYN|capture.FIN) != 0 {
			next[from]++
		}
	}
	var win uint16 = 65535
	if rng.IntN(10) == 0 {
		win = 0
	}
	return capture.Segment{
		Time: *now, Src: netip.AddrPortFrom(addrs[from], ports[from]),
		Dst: netip.AddrPortFrom(addrs[1-from], ports[1-from]), Seq: capture.Seq(seq), Ack: capture.Seq(ack), Flags: f,
		Window: win, PayloadLen: n, IPLen: 40 + n,
		Truncated: rng.IntN(50) == 0, BadChecksum: rng.IntN(40) == 0,
	}
}

// TestZeekFastPathsAsFullPath checks that Observe's shortcuts (timerDue before expired,
// fastPacket before packet) give exactly what the full path gives, state for state.
func TestZeekFastPathsAsFullPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	portSets := [][2]uint16{{40000, 80}, {80, 40000}, {40000, 22}, {443, 993}, {5000, 6000}}
	cfgs := []*Config{nil, {}, {Bare: true}, {ServerPorts: []uint16{5000}}}
	fast := 0
	for iter := 0; iter < 1000; iter++ {
		z := &View{cfg: cfgs[iter%len(cfgs)]}
		ports := portSets[rng.IntN(len(portSets))]
		next := [2]uint32{rng.Uint32(), rng.Uint32()}
		if rng.IntN(4) == 0 {
			next[0] = 0xffffffff - uint32(rng.IntN(5000)) // wraps soon
		}
		now := time.Unix(1700000000, 0).UTC()
		for k := 0; k < 80; k++ {
			from := Side(rng.IntN(2))
			if rng.IntN(3) == 0 && k > 0 {
				from = Side(k & 1)
			}
			seg := zeekRandomSegment(rng, from, &next, &now, ports)
			ref := cloneZeekView(z)
			if n := len(z.rows); n > 0 && seg.Flags&(capture.SYN|capture.FIN|capture.RST) == 0 &&
				z.rows[n-1].ep[0].state != Inactive && z.rows[n-1].ep[1].state != Inactive {
				fast++
			}
			z.Observe(&seg, from)
			ref.refObserve(&seg, from)
			if !sameZeekView(z, ref) {
				t.Fatalf("iteration %d, segment %d (%+v from %d):\nfast paths:\n%s\nfull path:\n%s", iter, k, seg, from,
					dumpZeekView(z), dumpZeekView(ref))
			}
		}
	}
	t.Logf("%d segments for the fast path", fast)
	if fast < 5000 {
		t.Errorf("only %d segments for the fast path", fast)
	}
}
