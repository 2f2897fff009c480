// Package reassembly does per-direction sequence analysis: for one direction of a TCP
// connection it says what each segment is (new, retransmission, out of order, keepalive, window
// probe, beyond a gap) and tracks what the peer has acknowledged. It knows nothing of socket
// states and keeps no payload bytes.
package reassembly

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// Kind says what a segment is within its direction's sequence space.
type Kind uint8

const (
	// AckOnly takes no sequence space (a pure ACK, a window update, a RST).
	AckOnly Kind = iota
	// New carries sequence space (data, SYN, FIN) seen here for the first time, in order.
	New
	// Retransmission carries only sequence space that was already seen.
	Retransmission
	// OutOfOrder fills a hole left by an earlier gap: first seen now, but below the highest.
	OutOfOrder
	// Gap starts beyond everything seen so far: the bytes before it were not captured (yet).
	Gap
	// Keepalive is a probe one byte below the next sequence number with no new data.
	Keepalive
	// WindowProbe is a probe sent while the peer advertises a zero window.
	WindowProbe
	// Duplicate is a copy of the previous segment of this direction (a SPAN port or a
	// capture on two interfaces sends packets twice); count it once.
	Duplicate
)

var kindNames = [...]string{"ack", "new", "retransmission", "out-of-order", "gap", "keepalive", "window-probe", "duplicate"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// maxHoles bounds the holes remembered per direction, so hostile traffic cannot grow memory.
const maxHoles = 8

// implausibleJump: an ACK further than this beyond anything seen is not believed (crafted or
// from another connection) and does not move the sequence space.
const implausibleJump = 1 << 26

// duplicateWindow: a copy of the previous segment arriving within this time is a capture
// duplicate, not a retransmission (no stack retransmits within 200µs).
const duplicateWindow = 200 * time.Microsecond

type hole struct{ from, to capture.Seq } // [from, to)

// Direction is the sequence state of one direction of a connection: what its sender sent and
// what the receiver acknowledged.
type Direction struct {
	Started bool // at least one segment seen, or its sequence space inferred from the peer's ACKs
	SynSeen bool // ISN is from a real SYN (else inferred from the first segment)
	ISN     capture.Seq
	Next    capture.Seq // one past the highest sequence number seen sent
	// Acked is the highest acknowledgment the peer sent for this direction.
	Acked    capture.Seq
	AckedSet bool
	FinSeen  bool
	FinSeq   capture.Seq // sequence number of the FIN (it ends at FinSeq+1)
	// FinInferred: the FIN was never captured; the peer acknowledged exactly one sequence
	// number past everything seen, which is what a FIN takes. Withdrawn if data follows.
	FinInferred bool

	// Window is what this direction's sender last advertised it can receive (scaled).
	Window     uint32
	ZeroWindow bool // the last advertisement was a zero window
	wsOffered  bool
	wsShift    uint8
	scaled     bool // window scaling was negotiated on both SYNs

	// Counters.
	Segments, Bytes                       uint64 // all segments; new payload bytes
	Retransmits, OutOfOrders, Keepalives  uint32
	WindowProbes, Duplicates, ZeroWindows uint32
	// MissedBytes counts sequence space the peer acknowledged that the capture never showed.
	MissedBytes uint64

	holes  [maxHoles]hole
	nholes int
	// last are the latest distinct segments of the direction, newest first: a copy of any of
	// them within duplicateWindow is a capture duplicate.
	last [dupDepth]fingerprint
}

// dupDepth is how many of a direction's latest segments a copy is looked for among. A SPAN
// port mirroring both sides of a router, or two taps merged into one file, can interleave the
// copies of a burst (A B A' B'), so the previous segment alone is not enough.
const dupDepth = 4

type fingerprint struct {
	t        capture.Time // the segment's time
	seq, ack capture.Seq
	length   uint32
	tsval    uint32
	window   uint16
	flags    capture.Flags
	set      bool
}

// copyOf reports whether fp is a capture copy of l: the same header fields, seen at most
// duplicateWindow later.
func (l *fingerprint) copyOf(fp *fingerprint) bool {
	if !l.set || fp.seq != l.seq || fp.ack != l.ack || fp.length != l.length || fp.flags != l.flags ||
		fp.window != l.window || fp.tsval != l.tsval {
		return false
	}
	return l.within(fp)
}

// within reports whether fp is at most duplicateWindow later than l.
func (l *fingerprint) within(fp *fingerprint) bool {
	d := fp.t.Sub(l.t)
	return d >= 0 && d < duplicateWindow
}

// Observe classifies seg, sent by the sender of d, and applies its acknowledgment to peer (the
// opposite direction). It returns the segment's kind.
func (d *Direction) Observe(seg *capture.Segment, peer *Direction) Kind {
	fp := fingerprint{t: capture.TimeOf(seg.Time), seq: seg.Seq, ack: seg.Ack,
		length: seg.PayloadLen, tsval: seg.Opts.TSVal, window: seg.Window, flags: seg.Flags, set: true}
	// The remembered segments are a prefix of last: the entries after the first unset one are
	// unset too, and zero (they are only ever shifted down or cleared to the end), so the search
	// stops there.
	for i := range d.last {
		l := &d.last[i]
		if !l.set {
			break
		}
		if l.copyOf(&fp) {
			d.Duplicates++
			l.t = fp.t
			return Duplicate
		}
	}
	if !d.last[1].set {
		// At most one segment remembered, the usual case (packets of a connection are rarely
		// within duplicateWindow of each other): what the shift and the clearing below would
		// leave, without them. last[1:] is zero; it keeps the previous segment only if a later
		// copy could still match it.
		if d.last[0].set && d.last[0].within(&fp) {
			d.last[1] = d.last[0]
		}
		d.last[0] = fp
	} else {
		copy(d.last[1:], d.last[:dupDepth-1])
		d.last[0] = fp
		// Older segments no later copy can match any more (it would come after fp, too late)
		// are forgotten: a quiet connection packs small (flowtable/dormant.go).
		for i := 1; i < dupDepth && d.last[i].set; i++ {
			if !d.last[i].within(&fp) {
				clear(d.last[i:])
				break
			}
		}
	}
	d.Segments++

	f := seg.Flags
	if f&capture.SYN != 0 {
		d.wsOffered = seg.Opts.Has&capture.HasWScale != 0
		d.wsShift = min(seg.Opts.WScale, 14)
		if peer.SynSeen {
			d.scaled = d.wsOffered && peer.wsOffered
			peer.scaled = d.scaled
		}
	}
	kind := d.classify(seg, peer)
	if f&capture.ACK != 0 {
		peer.acknowledge(seg.Ack)
	}
	if f&(capture.RST|capture.SYN) == 0 {
		w := uint32(seg.Window)
		if d.scaled {
			w <<= d.wsShift
		}
		d.Window = w
		zero := w == 0
		if zero && !d.ZeroWindow {
			d.ZeroWindows++
		}
		d.ZeroWindow = zero
	} else if f&capture.SYN != 0 {
		d.Window = uint32(seg.Window)
	}
	return kind
}

func (d *Direction) classify(seg *capture.Segment, peer *Direction) Kind {
	f := seg.Flags
	seq := seg.Seq
	if f&capture.RST != 0 {
		if !d.Started {
			d.Started, d.ISN, d.Next = true, seq-1, seq
		}
		return AckOnly
	}
	end := seg.End()
	if f&capture.SYN != 0 {
		if d.SynSeen && seq == d.ISN {
			d.Retransmits++
			if f&capture.FIN != 0 {
				d.noteFin(end)
			}
			return Retransmission
		}
		d.Started, d.SynSeen, d.ISN, d.Next = true, true, seq, end
		d.nholes = 0
		d.Bytes += uint64(seg.PayloadLen)
		if f&capture.FIN != 0 {
			d.noteFin(end)
		}
		return New
	}
	if !d.Started {
		d.Started, d.ISN, d.Next = true, seq-1, seq
	}
	if d.FinInferred && seg.PayloadLen > 0 && end.GT(d.FinSeq+1) {
		// Data beyond the supposed FIN: it was a lost data byte, not a FIN.
		d.FinInferred, d.FinSeen = false, false
		d.MissedBytes++
	}
	if end == seq { // no sequence space: a pure ACK, or a zero-length keepalive/probe
		if seq == d.Next-1 && (d.AckedSet && d.Acked == d.Next || !d.AckedSet) {
			return d.probe(peer)
		}
		return AckOnly
	}
	if f&capture.FIN != 0 {
		d.noteFin(end)
	}
	if seg.PayloadLen <= 1 && f&capture.FIN == 0 && seq == d.Next-1 && d.AckedSet && d.Acked == d.Next {
		return d.probe(peer) // a keepalive carrying one garbage byte (Windows, BSD)
	}
	switch {
	case end.LEQ(d.Next):
		if d.fillHole(seq, end) {
			d.OutOfOrders++
			return OutOfOrder
		}
		d.Retransmits++
		return Retransmission
	case seq.GT(d.Next):
		if seq.Sub(d.Next) < implausibleJump {
			d.addHole(d.Next, seq)
		}
		d.Bytes += uint64(seg.PayloadLen)
		d.Next = end
		return Gap
	default:
		d.Bytes += uint64(end.Sub(d.Next))
		if f&capture.FIN != 0 {
			d.Bytes--
		}
		d.Next = end
		if peer.ZeroWindow && seg.PayloadLen == 1 {
			d.WindowProbes++
			return WindowProbe
		}
		return New
	}
}

func (d *Direction) probe(peer *Direction) Kind {
	if peer.ZeroWindow {
		d.WindowProbes++
		return WindowProbe
	}
	d.Keepalives++
	return Keepalive
}

func (d *Direction) noteFin(end capture.Seq) {
	if !d.FinSeen || end-1 != d.FinSeq {
		d.FinSeen, d.FinSeq = true, end-1
	}
}

// acknowledge applies an ACK from the peer covering this direction.
func (d *Direction) acknowledge(ack capture.Seq) {
	if !d.Started {
		// One-sided capture: this direction was never seen; anchor it at the ACK.
		d.Started, d.ISN, d.Next = true, ack-1, ack
	}
	if ack.GT(d.Next) {
		jump := ack.Sub(d.Next)
		if jump >= implausibleJump {
			return
		}
		if jump == 1 && !d.FinSeen && d.nholes == 0 {
			// One sequence number past everything seen: most likely a FIN the capture missed.
			d.FinSeen, d.FinSeq, d.FinInferred = true, d.Next, true
		} else {
			// The peer acknowledged sequence space the capture never showed.
			d.MissedBytes += uint64(jump)
		}
		d.Next = ack
	}
	for i := 0; i < d.nholes; {
		h := d.holes[i]
		if h.from.LT(ack) {
			to := h.to
			if ack.LT(to) {
				to = ack
			}
			d.MissedBytes += uint64(to.Sub(h.from))
			if ack.LT(h.to) {
				d.holes[i].from = ack
				i++
				continue
			}
			d.removeHole(i)
			continue
		}
		i++
	}
	if !d.AckedSet || ack.GT(d.Acked) {
		d.Acked, d.AckedSet = ack, true
	}
}

func (d *Direction) addHole(from, to capture.Seq) {
	if d.nholes == maxHoles {
		d.removeHole(0) // forget the oldest: a segment filling it will look like a retransmission
	}
	d.holes[d.nholes] = hole{from, to}
	d.nholes++
}

func (d *Direction) removeHole(i int) {
	copy(d.holes[i:], d.holes[i+1:d.nholes])
	d.nholes--
}

// fillHole reports whether [from, to) overlaps a hole, and shrinks the holes it covers.
func (d *Direction) fillHole(from, to capture.Seq) bool {
	hit := false
	for i := 0; i < d.nholes; {
		h := d.holes[i]
		if !(from.LT(h.to) && h.from.LT(to)) {
			i++
			continue
		}
		hit = true
		switch {
		case from.LEQ(h.from) && h.to.LEQ(to):
			d.removeHole(i)
			continue
		case from.LEQ(h.from):
			d.holes[i].from = to
		case h.to.LEQ(to):
			d.holes[i].to = from
		default: // splits the hole in two
			d.holes[i].to = from
			if d.nholes < maxHoles {
				d.holes[d.nholes] = hole{to, h.to}
				d.nholes++
			}
		}
		i++
	}
	return hit
}

// Holes is how many gaps in this direction are still unfilled and unacknowledged.
func (d *Direction) Holes() int { return d.nholes }

// FinAckedBy reports whether ack covers this direction's FIN.
func (d *Direction) FinAckedBy(ack capture.Seq) bool { return d.FinSeen && ack.GT(d.FinSeq) }

// SynAckedBy reports whether ack covers this direction's SYN.
func (d *Direction) SynAckedBy(ack capture.Seq) bool { return d.SynSeen && ack.GT(d.ISN) }
