package reassembly

import (
	"time"

	"github.com/tcpstate/tcpstate/internal/pack"
)

// Pack encodes or decodes the direction with k (see internal/pack): every field, so that a
// decoded Direction goes on exactly as the encoded one would have. The tracker uses it to keep
// quiet connections compact. A direction that never saw a segment takes one bit, and so do
// its counters of trouble (retransmissions, holes, ...) when there was none.
func (d *Direction) Pack(k *pack.Codec) {
	if !k.Block(k.Enc && (d.Started || *d != Direction{})) {
		if !k.Enc {
			*d = Direction{}
		}
		return
	}
	k.Bool(&d.Started)
	k.Bool(&d.SynSeen)
	k.Seq((*uint32)(&d.ISN))
	k.Seq((*uint32)(&d.Next))
	k.Seq((*uint32)(&d.Acked))
	k.Bool(&d.AckedSet)
	k.Bool(&d.FinSeen)
	k.Seq((*uint32)(&d.FinSeq))
	pack.Uint(k, &d.Window)
	k.Bool(&d.wsOffered)
	pack.Uint(k, &d.wsShift)
	k.Bool(&d.scaled)
	k.U64(&d.Segments)
	k.U64(&d.Bytes)
	for i := range d.last {
		l := &d.last[i]
		if i > 0 && !k.Block(k.Enc && *l != fingerprint{}) {
			if !k.Enc {
				*l = fingerprint{}
			}
			continue
		}
		// The time as a Time field: written as its distance from the previous one, short.
		var t time.Time
		if l.sec != 0 || l.nsec != 0 {
			t = time.Unix(l.sec, int64(l.nsec)).UTC()
		}
		k.Time(&t)
		if !k.Enc {
			l.sec, l.nsec = 0, 0
			if !t.IsZero() {
				l.sec, l.nsec = t.Unix(), int32(t.Nanosecond())
			}
		}
		k.Seq(&l.seq)
		k.Seq(&l.ack)
		pack.Uint(k, &l.length)
		pack.Uint(k, &l.window)
		pack.Uint(k, &l.flags)
		pack.Uint(k, &l.tsval)
		k.Bool(&l.set)
	}
	// Trouble: usually none.
	if !k.Block(k.Enc && (d.FinInferred || d.ZeroWindow || d.Retransmits != 0 || d.OutOfOrders != 0 ||
		d.Keepalives != 0 || d.WindowProbes != 0 || d.Duplicates != 0 || d.ZeroWindows != 0 ||
		d.MissedBytes != 0 || d.nholes != 0 || d.holes != [maxHoles]hole{})) {
		if !k.Enc {
			d.FinInferred, d.ZeroWindow = false, false
			d.Retransmits, d.OutOfOrders, d.Keepalives = 0, 0, 0
			d.WindowProbes, d.Duplicates, d.ZeroWindows = 0, 0, 0
			d.MissedBytes, d.nholes, d.holes = 0, 0, [maxHoles]hole{}
		}
		return
	}
	k.Bool(&d.FinInferred)
	k.Bool(&d.ZeroWindow)
	pack.Uint(k, &d.Retransmits)
	pack.Uint(k, &d.OutOfOrders)
	pack.Uint(k, &d.Keepalives)
	pack.Uint(k, &d.WindowProbes)
	pack.Uint(k, &d.Duplicates)
	pack.Uint(k, &d.ZeroWindows)
	k.U64(&d.MissedBytes)
	pack.Int(k, &d.nholes)
	if k.Block(k.Enc && d.holes != [maxHoles]hole{}) {
		for i := range d.holes {
			k.Seq((*uint32)(&d.holes[i].from))
			k.Seq((*uint32)(&d.holes[i].to))
		}
	} else if !k.Enc {
		d.holes = [maxHoles]hole{}
	}
}
