package reassembly

import "github.com/tcpstate/tcpstate/internal/pack"

// Pack encodes or decodes the direction with k (see internal/pack): every field, so that a
// decoded Direction goes on exactly as the encoded one would have. The tracker uses it to keep
// quiet connections compact. A direction that never saw a segment takes one bit.
func (d *Direction) Pack(k *pack.Codec) {
	if !k.Block(*d != Direction{}) {
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
	k.Bool(&d.FinInferred)
	pack.Uint(k, &d.Window)
	k.Bool(&d.ZeroWindow)
	k.Bool(&d.wsOffered)
	pack.Uint(k, &d.wsShift)
	k.Bool(&d.scaled)
	k.U64(&d.Segments)
	k.U64(&d.Bytes)
	pack.Uint(k, &d.Retransmits)
	pack.Uint(k, &d.OutOfOrders)
	pack.Uint(k, &d.Keepalives)
	pack.Uint(k, &d.WindowProbes)
	pack.Uint(k, &d.Duplicates)
	pack.Uint(k, &d.ZeroWindows)
	k.U64(&d.MissedBytes)
	pack.Int(k, &d.nholes)
	if k.Block(d.holes != [maxHoles]hole{}) {
		for i := range d.holes {
			k.Seq((*uint32)(&d.holes[i].from))
			k.Seq((*uint32)(&d.holes[i].to))
		}
	} else if !k.Enc {
		d.holes = [maxHoles]hole{}
	}
	l := &d.last
	k.Time(&l.t)
	k.Seq(&l.seq)
	k.Seq(&l.ack)
	pack.Uint(k, &l.length)
	pack.Uint(k, &l.window)
	pack.Uint(k, &l.flags)
	pack.Uint(k, &l.tsval)
	k.Bool(&l.set)
}
