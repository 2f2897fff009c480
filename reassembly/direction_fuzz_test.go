package reassembly

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// fuzzRecord is how many input bytes make one segment in FuzzClassify (short tails are
// zero-padded).
const fuzzRecord = 16

// fuzzSegment decodes one record into a segment sent by d towards peer. The record picks the
// flags, then sequence and acknowledgment numbers mostly relative to what the directions have
// seen (so that inputs reach retransmissions, holes, probes and the 2^32 wrap rather than only
// random numbers), a payload length from 0 to the largest an IPv6 jumbogram can claim, a
// window, a window scale and the time step.
//
//	[0]  bit 0 direction (read by the caller), bits 1-3 seq mode, bits 4-6 ack mode, bit 7 window-scale option
//	[1]  flags, as on the wire
//	[2:6] seq argument, [6:10] ack argument (big endian)
//	[10:12] length argument, [12] bits 0-1 length mode, bits 2-4 time step, bits 5-7 TSval step
//	[13] window scale, [14:16] window
func fuzzSegment(rec []byte, d, peer *Direction, now *time.Time, tsval *uint32) capture.Segment {
	var r [fuzzRecord]byte
	copy(r[:], rec)
	seqArg := binary.BigEndian.Uint32(r[2:6])
	ackArg := binary.BigEndian.Uint32(r[6:10])
	lenArg := uint32(binary.BigEndian.Uint16(r[10:12]))
	s := capture.Segment{Flags: capture.Flags(r[1]), Window: binary.BigEndian.Uint16(r[14:16])}

	s.Seq = capture.Seq(pick(r[0]>>1&7, seqArg, d))
	s.Ack = capture.Seq(pick(r[0]>>4&7, ackArg, peer))
	switch r[12] & 3 {
	case 0:
		s.PayloadLen = lenArg // 0..65535, what an IPv4 total length allows
	case 1:
		s.PayloadLen = 0
	case 2:
		s.PayloadLen = lenArg & 3 // keepalive garbage bytes, window probes
	case 3:
		s.PayloadLen = min(lenArg<<14, 1<<30) // IPv6 jumbograms: the decoder accepts up to 2^30
	}
	if r[0]&0x80 != 0 {
		s.Opts.Has |= capture.HasWScale
		s.Opts.WScale = r[13]
	}
	steps := [8]time.Duration{0, time.Microsecond, 150 * time.Microsecond, time.Millisecond,
		200 * time.Millisecond, time.Second, time.Hour, -time.Millisecond} // backwards: merged files
	*now = now.Add(steps[r[12]>>2&7])
	s.Time = *now
	*tsval += uint32(r[12] >> 5)
	s.Opts.TSVal = *tsval
	s.Opts.Has |= capture.HasTimestamps
	return s
}

// pick chooses a sequence (or acknowledgment) number in the space of direction d.
func pick(mode uint8, arg uint32, d *Direction) uint32 {
	next, acked := uint32(d.Next), uint32(d.Acked)
	switch mode {
	case 0:
		return next + uint32(int32(int16(arg))) // near the front: new data, small gaps, retransmits
	case 1:
		return next + arg // anywhere: implausible jumps, across 2^32
	case 2:
		return arg // absolute
	case 3:
		return next - 1 - arg&1 // keepalives, and one below
	case 4:
		return uint32(d.ISN) + arg&3
	case 5:
		return next + 1<<31 + uint32(int32(int8(arg))) // the far side of the serial-number circle
	case 6:
		return [4]uint32{0, 1 << 31, 1<<32 - 1, 1<<31 - 1}[arg&3] + arg>>2&7
	default:
		return acked + uint32(int32(int16(arg)))
	}
}

// dirCounts is what the fuzz target keeps to check a direction's counters.
type dirCounts struct {
	observed uint64
	kinds    [8]uint64
}

// FuzzClassify feeds segments decoded from arbitrary bytes, in both directions, to
// Direction.Observe. Nothing may panic, the holes stay bounded and well formed, the counters
// agree with the kinds returned, and neither Next nor MissedBytes moves by more than one
// segment or one believable acknowledgment can justify.
func FuzzClassify(f *testing.F) {
	// A handshake, data, a FIN each way; data across the wrap; a gap then its fill; probes
	// into a zero window; a SYN flood-ish burst of flags.
	f.Add(fuzzRecords(
		rec(0, S, 2, 0xFFFFFF00, 2, 0, 1, 0, 0, 7, 65535), // SYN, absolute seq near the wrap
		rec(1, S|A, 2, 1000, 0, 1, 1, 0, 2, 7, 65535),     // SYN-ACK acking it
		rec(0, A, 0, 0, 0, 0, 1, 0, 2, 0, 512),
		rec(0, A|P, 0, 0, 0, 0, 0, 1400, 3, 0, 512), // data across 2^32
		rec(1, A, 0, 0, 0, 0, 1, 0, 3, 0, 0),        // zero window
		rec(0, A, 3, 0, 0, 0, 2, 1, 5, 0, 512),      // probe
		rec(1, A|F, 0, 0, 0, 0, 1, 0, 3, 0, 512),
		rec(0, A|F, 0, 0, 0, 1, 1, 0, 3, 0, 512),
	))
	f.Add(fuzzRecords(
		rec(0, A, 2, 5000, 2, 9000, 0, 100, 3, 0, 1000), // midstream
		rec(0, A, 0, 300, 0, 0, 0, 100, 3, 0, 1000),     // gap of 300
		rec(0, A, 0, 0xFEC0, 0, 0, 0, 100, 3, 0, 1000),  // back into the hole
		rec(1, A, 0, 0, 0, 0, 1, 0, 3, 0, 1000),         // ACK past everything: missed bytes
		rec(1, A, 0, 0, 1, 1<<27, 1, 0, 3, 0, 1000),     // implausible ACK
		rec(0, A, 0, 0, 0, 0, 0, 100, 0, 0, 1000),       // duplicate-speed copy
		rec(0, A, 0, 0, 0, 0, 0, 100, 0, 0, 1000),
	))
	f.Add(fuzzRecords(
		rec(0, R, 6, 2, 6, 3, 0, 0, 0, 0, 0),
		rec(1, S|F|R|P|A|U|E|W, 5, 0, 5, 0, 3, 0xFFFF, 3, 255, 0xFFFF), // everything, jumbo
		rec(0, 0, 1, 0x80000000, 1, 0x7FFFFFFF, 0, 0xFFFF, 6, 0, 1),
	))
	var a, b Direction
	f.Fuzz(func(t *testing.T, data []byte) {
		a, b = Direction{}, Direction{}
		dirs := [2]*Direction{&a, &b}
		var cnt [2]dirCounts
		now := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
		var tsval uint32
		for i := 0; i < len(data) && i < 256*fuzzRecord; i += fuzzRecord {
			// Which direction sends is the first bit; decode relative to that sender.
			from := int(data[i] & 1)
			d, peer := dirs[from], dirs[1-from]
			s := fuzzSegment(data[i:min(i+fuzzRecord, len(data))], d, peer, &now, &tsval)
			before, peerBefore := *d, *peer

			k := d.Observe(&s, peer)

			cnt[from].observed++
			if int(k) >= len(cnt[from].kinds) || k.String() == "unknown" {
				t.Fatalf("segment %d: kind %d out of range", i/fuzzRecord, k)
			}
			cnt[from].kinds[k]++
			checkDirection(t, i/fuzzRecord, "sender", d, &before, &s, true)
			checkDirection(t, i/fuzzRecord, "receiver", peer, &peerBefore, &s, false)
		}
		for i, d := range dirs {
			c := &cnt[i]
			if d.Segments+uint64(d.Duplicates) != c.observed {
				t.Fatalf("dir %d: %d segments + %d duplicates, %d observed", i, d.Segments, d.Duplicates, c.observed)
			}
			for _, x := range []struct {
				kind Kind
				got  uint64
			}{
				{Retransmission, uint64(d.Retransmits)}, {OutOfOrder, uint64(d.OutOfOrders)},
				{Keepalive, uint64(d.Keepalives)}, {WindowProbe, uint64(d.WindowProbes)},
				{Duplicate, uint64(d.Duplicates)},
			} {
				if x.got != c.kinds[x.kind] {
					t.Fatalf("dir %d: counter for %v is %d, Observe returned it %d times", i, x.kind, x.got, c.kinds[x.kind])
				}
			}
			if uint64(d.ZeroWindows) > d.Segments {
				t.Fatalf("dir %d: %d zero windows in %d segments", i, d.ZeroWindows, d.Segments)
			}
		}
	})
}

// checkDirection checks what one Observe call did to one direction (the sender's own, or the
// receiver's through the acknowledgment).
func checkDirection(t *testing.T, n int, role string, d, before *Direction, s *capture.Segment, sender bool) {
	t.Helper()
	if d.nholes < 0 || d.nholes > maxHoles || d.Holes() != d.nholes {
		t.Fatalf("segment %d, %s: %d holes (max %d)", n, role, d.nholes, maxHoles)
	}
	for i := 0; i < d.nholes; i++ {
		h := d.holes[i]
		if w := h.to.Sub(h.from); w <= 0 || w >= implausibleJump {
			t.Fatalf("segment %d, %s: hole %d [%d, %d) of width %d", n, role, i, uint32(h.from), uint32(h.to), w)
		}
	}
	if d.Started && !before.Started {
		return // anchored just now: Next may be anything
	}
	if !d.Started {
		if d.Next != before.Next {
			t.Fatalf("segment %d, %s: unstarted direction moved", n, role)
		}
		return
	}
	// MissedBytes grows only by a believable ACK jump plus the holes that ACK covered (each
	// narrower than a believable jump), plus one for a withdrawn inferred FIN.
	var holeSpace uint64
	for i := 0; i < before.nholes; i++ {
		holeSpace += uint64(before.holes[i].to.Sub(before.holes[i].from))
	}
	if grew := d.MissedBytes - before.MissedBytes; d.MissedBytes < before.MissedBytes || grew > implausibleJump+holeSpace+1 {
		t.Fatalf("segment %d, %s: MissedBytes %d -> %d (holes held %d)", n, role, before.MissedBytes, d.MissedBytes, holeSpace)
	}
	if d.Bytes < before.Bytes || d.Bytes-before.Bytes > uint64(s.PayloadLen) {
		t.Fatalf("segment %d, %s: Bytes %d -> %d for a %d-byte payload", n, role, before.Bytes, d.Bytes, s.PayloadLen)
	}
	jump := d.Next.Sub(before.Next)
	switch {
	case jump == 0:
	case sender && s.Flags&capture.SYN != 0 && s.Flags&capture.RST == 0:
		// A SYN with a new ISN re-anchors the sequence space.
	case sender:
		// Data moves Next to the segment's end, forwards only.
		if d.Next != capture.Seq(s.End()) || jump < 0 {
			t.Fatalf("segment %d, %s: Next %d -> %d (seq %d, end %d)", n, role, uint32(before.Next), uint32(d.Next), s.Seq, s.End())
		}
	default:
		// Only an ACK moves the receiver's Next, and only by a believable jump.
		if s.Flags&capture.ACK == 0 || jump < 0 || jump >= implausibleJump || d.Next != capture.Seq(s.Ack) {
			t.Fatalf("segment %d, %s: Next %d -> %d by ACK %d (flags %v)", n, role, uint32(before.Next), uint32(d.Next), s.Ack, s.Flags)
		}
	}
}

// rec builds one FuzzClassify record (see fuzzSegment) for the seeds.
func rec(dir uint8, flags capture.Flags, seqMode uint8, seqArg uint32, ackMode uint8, ackArg uint32,
	lenMode uint8, lenArg uint16, step uint8, ws uint8, win uint16) []byte {
	r := make([]byte, fuzzRecord)
	r[0] = dir&1 | seqMode&7<<1 | ackMode&7<<4
	if ws != 0 {
		r[0] |= 0x80
	}
	r[1] = byte(flags)
	binary.BigEndian.PutUint32(r[2:], seqArg)
	binary.BigEndian.PutUint32(r[6:], ackArg)
	binary.BigEndian.PutUint16(r[10:], lenArg)
	r[12] = lenMode&3 | step&7<<2 | 1<<5
	r[13] = ws
	binary.BigEndian.PutUint16(r[14:], win)
	return r
}

func fuzzRecords(recs ...[]byte) []byte {
	var out []byte
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}

const (
	S = capture.SYN
	A = capture.ACK
	F = capture.FIN
	R = capture.RST
	P = capture.PSH
	U = capture.URG
	E = capture.ECE
	W = capture.CWR
)
