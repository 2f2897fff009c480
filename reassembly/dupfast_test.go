package reassembly

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// refRemember is how Observe remembered a segment before its shortcut for a direction that
// remembers at most one: search every entry, shift them all down, clear the stale ones.
func refRemember(last *[dupDepth]fingerprint, fp fingerprint) bool {
	for i := range last {
		if l := &last[i]; l.copyOf(&fp) {
			l.t = fp.t
			return true
		}
	}
	copy(last[1:], last[:dupDepth-1])
	last[0] = fp
	for i := 1; i < dupDepth && last[i].set; i++ {
		if !last[i].within(&fp) {
			clear(last[i:])
			break
		}
	}
	return false
}

// TestDuplicateMemoryAsFullShift checks that Observe's duplicate search and memory (the early
// stop at the first unset entry, the shortcut when at most one segment is remembered) leave
// exactly what the full search, shift and clearing leave, over random bursts of copies,
// interleavings and times, backwards ones included.
func TestDuplicateMemoryAsFullShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	steps := []time.Duration{0, time.Microsecond, 50 * time.Microsecond, 150 * time.Microsecond,
		199 * time.Microsecond, 200 * time.Microsecond, 250 * time.Microsecond, time.Millisecond,
		time.Second, 2 * time.Second, -time.Microsecond, -time.Second}
	shortcut, full, dups := 0, 0, 0
	for iter := 0; iter < 2000; iter++ {
		var d, peer Direction
		var ref [dupDepth]fingerprint
		now := time.Unix(1700000000, int64(rng.IntN(1e9))).UTC()
		var sent []capture.Segment
		for k := 0; k < 60; k++ {
			now = now.Add(steps[rng.IntN(len(steps))])
			var s capture.Segment
			if len(sent) > 0 && rng.IntN(3) == 0 {
				s = sent[len(sent)-1-rng.IntN(min(len(sent), 5))] // a copy, or a retransmission
			} else {
				s = capture.Segment{Seq: capture.Seq(1000 + k*100), Ack: capture.Seq(rng.IntN(3)),
					Flags: capture.ACK, PayloadLen: uint32(rng.IntN(2) * 100), Window: 1000}
				sent = append(sent, s)
			}
			s.Time = now
			if !d.last[1].set {
				shortcut++
			} else {
				full++
			}
			fp := fingerprint{t: capture.TimeOf(s.Time), seq: s.Seq, ack: s.Ack,
				length: s.PayloadLen, tsval: s.Opts.TSVal, window: s.Window, flags: s.Flags, set: true}
			dup := refRemember(&ref, fp)
			if dup {
				dups++
			}
			kind := d.Observe(&s, &peer)
			if (kind == Duplicate) != dup || d.last != ref {
				t.Fatalf("iteration %d, segment %d: duplicate %v (want %v)\nlast %+v\nwant %+v", iter, k,
					kind == Duplicate, dup, d.last, ref)
			}
		}
	}
	t.Logf("%d segments for the shortcut, %d for the full path, %d duplicates", shortcut, full, dups)
	if shortcut < 10000 || full < 10000 || dups < 3000 {
		t.Errorf("too few segments for a path: %d shortcut, %d full, %d duplicates", shortcut, full, dups)
	}
}
