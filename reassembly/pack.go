package reassembly

import (
	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/pack"
)

// Pack encodes or decodes the direction with k (see internal/pack): every field, so that a
// decoded Direction goes on exactly as the encoded one would have. The tracker uses it to keep
// quiet connections compact. A direction that never saw a segment takes one bit, and so do
// its counters of trouble (retransmissions, holes, ...) when there was none.
//
// Sequence numbers are written relative to own, the latest one of this direction's sequence
// space, and acknowledgments to peer, the latest one of the other direction's (see
// pack.Codec.SeqFrom): each space's numbers are close together, the two spaces far apart. The
// caller keeps both (for the two directions of a connection, the same two, crossed) and passes
// the same values to the encoding and the decoding.
func (d *Direction) Pack(k *pack.Codec, own, peer *capture.Seq) {
	if !k.Block(k.Enc && (d.Started || *d != Direction{})) {
		if !k.Enc {
			*d = Direction{}
		}
		return
	}
	k.Bools(&d.Started, &d.SynSeen, &d.AckedSet, &d.FinSeen, &d.wsOffered, &d.scaled)
	k.SeqFrom((&d.ISN), own)
	k.SeqFrom((&d.Next), own)
	k.SeqFrom((&d.Acked), own)
	k.SeqFrom((&d.FinSeq), own)
	pack.Uint(k, &d.Window)
	pack.Uint(k, &d.wsShift)
	pack.Uint(k, &d.Segments)
	pack.Uint(k, &d.Bytes)
	for i := range d.last {
		l := &d.last[i]
		if i > 0 && !k.Block(k.Enc && *l != fingerprint{}) {
			if !k.Enc {
				*l = fingerprint{}
			}
			continue
		}
		// The time is written as its distance from the previous one, short.
		pack.Stamp(k, &l.t)
		k.SeqFrom(&l.seq, own)
		k.SeqFrom(&l.ack, peer)
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
	k.Bools(&d.FinInferred, &d.ZeroWindow)
	pack.Uint(k, &d.Retransmits)
	pack.Uint(k, &d.OutOfOrders)
	pack.Uint(k, &d.Keepalives)
	pack.Uint(k, &d.WindowProbes)
	pack.Uint(k, &d.Duplicates)
	pack.Uint(k, &d.ZeroWindows)
	pack.Uint(k, &d.MissedBytes)
	pack.Int(k, &d.nholes)
	if k.Block(k.Enc && d.holes != [maxHoles]hole{}) {
		for i := range d.holes {
			k.SeqFrom((&d.holes[i].from), own)
			k.SeqFrom((&d.holes[i].to), own)
		}
	} else if !k.Enc {
		d.holes = [maxHoles]hole{}
	}
}
