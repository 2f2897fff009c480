package zeek

import (
	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/pack"
)

// pack visits the Zeek view's fields; seqs are the latest sequence numbers of the two sides'
// spaces (see tracker's Conn.pack).
func (z *View) Pack(k *pack.Codec, in *pack.Interner, seqs *[2]capture.Seq) {
	k.Dict(&z.History, in)
	pack.Uint(k, &z.RowsDropped)
	n := k.Len(len(z.rows))
	if !k.Enc {
		z.rows = pack.GrowTo(z.rows, n)
	}
	for i := range n {
		if !k.Enc && z.rows[i] == nil {
			z.rows[i] = &zrow{}
		}
		z.rows[i].pack(k, seqs)
	}
}

func (r *zrow) pack(k *pack.Codec, seqs *[2]capture.Seq) {
	pack.Uint(k, &r.orig)
	for i := range 2 {
		pack.Uint(k, &r.ports[i])
		r.ep[i].pack(k, &seqs[i]) // ep is by side, as seqs
		pack.Uint(k, &r.seen[i])
		pack.Uint(k, &r.pkts[i])
		pack.Uint(k, &r.ipBytes[i])
	}
	k.Bytes(&r.history)
	pack.Stamp(k, &r.start)
	pack.Stamp(k, &r.lastTime)
	pack.Uint(k, &r.firstPacketSeen)
	k.Bool(&r.active)
	k.Dur(&r.inactivity)
	pack.Stamp(k, &r.deleteAt)
	// Usually zero.
	if k.Block(k.Enc && (r.missed != 0 || r.isPartial || r.closeDeferred || r.deferredGen ||
		r.attemptAt != 0 || len(r.expireAt) != 0 || r.established)) {
		pack.Uint(k, &r.missed)
		k.Bools(&r.isPartial, &r.closeDeferred, &r.deferredGen, &r.established)
		pack.Stamp(k, &r.attemptAt)
		n := k.Len(len(r.expireAt))
		if !k.Enc {
			r.expireAt = pack.GrowTo(r.expireAt, n)
		}
		for i := range n {
			pack.Stamp(k, &r.expireAt[i])
		}
	} else if !k.Enc {
		r.missed, r.isPartial, r.closeDeferred, r.deferredGen = 0, false, false, false
		r.attemptAt, r.expireAt, r.established = 0, pack.GrowTo(r.expireAt, 0), false
	}
}

// pristine reports whether e is as newZrow leaves it: every field is listed, so that a field
// added to zendpoint must be added here too (TestPackRoundTrip sets each one alone).
func (e *zendpoint) pristine() bool {
	return e.state == 0 && e.prev == 0 && e.startSeq == 0 && e.lastSeq == 0 && e.ackSeq == 0 &&
		e.seqWraps == 0 && e.ackWraps == 0 && e.lastSYN == 0 && e.lastFIN == 0 && e.lastRST == 0 &&
		e.finCnt == 0 && e.rstCnt == 0 && e.finSeq == 0 && !e.didClose && e.chk == (scaled{}) &&
		e.rxmt == (scaled{}) && e.win0 == (scaled{}) && e.gap == (scaled{}) &&
		e.re.lastReassem == 1 && e.re.trim == 1 && e.re.pending == nil && !e.re.skip && !e.re.didEOF
}

// pack visits the endpoint's fields; own is the latest sequence number of its side's space (see
// reassembly.Direction.Pack): its sequence numbers, and the acknowledgments it got, are in it.
func (e *zendpoint) pack(k *pack.Codec, own *capture.Seq) {
	if !k.Block(k.Enc && !e.pristine()) {
		if !k.Enc {
			*e = zendpoint{re: zreasm{lastReassem: 1, trim: 1}}
		}
		return
	}
	pack.Uint(k, &e.state)
	pack.Uint(k, &e.prev)
	// startSeq holds a sequence number (in an int64): its low 32 bits are one, the rest zero.
	lo, hi := capture.Seq(e.startSeq), e.startSeq>>32
	k.SeqFrom(&lo, own)
	k.SeqFrom(&e.lastSeq, own)
	k.SeqFrom(&e.ackSeq, own)
	pack.Uint(k, &e.lastSYN)
	pack.Uint(k, &e.lastFIN)
	pack.Int(k, &e.finCnt)
	pack.Uint(k, &e.finSeq)
	re := &e.re
	k.Bools(&e.didClose, &re.didEOF)
	pack.Default(k, &re.lastReassem, 1)
	pack.Default(k, &re.trim, 1)
	// Usually zero.
	if k.Block(k.Enc && (hi != 0 || e.seqWraps != 0 || e.ackWraps != 0 || e.lastRST != 0 ||
		e.rstCnt != 0 || e.chk != scaled{} || e.rxmt != scaled{} || e.win0 != scaled{} ||
		e.gap != scaled{} || len(re.pending) != 0 || re.skip)) {
		pack.Int(k, &hi)
		pack.Uint(k, &e.seqWraps)
		pack.Uint(k, &e.ackWraps)
		pack.Uint(k, &e.lastRST)
		pack.Int(k, &e.rstCnt)
		for _, s := range [4]*scaled{&e.chk, &e.rxmt, &e.win0, &e.gap} {
			pack.Uint(k, &s.cnt)
			pack.Uint(k, &s.thresh)
		}
		n := k.Len(len(re.pending))
		if !k.Enc {
			re.pending = pack.GrowTo(re.pending, n)
		}
		for i := range n {
			pack.Uint(k, &re.pending[i].from)
			pack.Uint(k, &re.pending[i].to)
		}
		k.Bool(&re.skip)
	} else if !k.Enc {
		hi, e.seqWraps, e.ackWraps, e.lastRST, e.rstCnt = 0, 0, 0, 0, 0
		e.chk, e.rxmt, e.win0, e.gap = scaled{}, scaled{}, scaled{}, scaled{}
		re.pending, re.skip = pack.GrowTo(re.pending, 0), false
	}
	if !k.Enc {
		e.startSeq = hi<<32 | int64(lo)
	}
}
