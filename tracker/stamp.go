package tracker

import (
	"math"
	"time"
)

// stamp is a packet time as the tracker keeps it in a connection's evidence: Unix nanoseconds
// with the sign bit flipped, in a uint64. It is a third of a time.Time's size, holds no pointer
// and compares as an integer, yet keeps what the evidence needs of a time.Time:
//
//   - 0 is unset (a time.Time's zero), and it comes before every time, as the zero time does;
//     every instant an int64 of nanoseconds holds is a time distinct from it, the Unix epoch
//     included (unlike ztime's, whose 0 is the epoch: a capture whose timestamps are all zero
//     is a capture at the epoch, not one without times);
//   - a time outside what an int64 of nanoseconds holds (before 1677-09-21, after 2262-04-11:
//     pcap times are 1970 to 2106, pcapng ones anything) is clamped to the nearest one, so
//     that such times still compare in order rather than wrap;
//   - sub and add saturate as time.Time's Sub and Add do, and an unset stamp counts as a time
//     before all others (sub) that a duration moves to the first one (add).
//
// Times that leave the tracker (Endpoint.Since, Deadline, events) are time.Time again (UTC).
type stamp uint64

const (
	stampBias       = 1 << 63 // a stamp is its Unix nanoseconds plus this (mod 2^64)
	stampMin  stamp = 1       // the earliest time a stamp holds: the first nanosecond after unset
	stampMax  stamp = math.MaxUint64
)

// Bounds of the times a stamp holds exactly, in Unix seconds: beyond them, stampOf checks.
const stampSafeSec = 9223372036 // math.MaxInt64 / 1e9

var (
	stampMinTime = time.Unix(0, math.MinInt64+1).UTC()
	stampMaxTime = time.Unix(0, math.MaxInt64).UTC()
)

// stampOf is t as a stamp: unset for the zero time, clamped when out of range.
func stampOf(t time.Time) stamp {
	sec := t.Unix()
	if -stampSafeSec < sec && sec < stampSafeSec {
		return stamp(uint64(sec*1e9+int64(t.Nanosecond())) ^ stampBias)
	}
	return stampOfFar(t)
}

// stampOfFar is stampOf for a time at least 292 years from the epoch.
func stampOfFar(t time.Time) stamp {
	switch {
	case t.IsZero():
		return 0
	case t.Before(stampMinTime):
		return stampMin
	case t.After(stampMaxTime):
		return stampMax
	}
	return stamp(uint64(t.UnixNano()) ^ stampBias)
}

// time is s as a time.Time (UTC; the zero time when unset).
func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.unixNano()).UTC()
}

// unixNano is s in Unix nanoseconds (set stamps only).
func (s stamp) unixNano() int64 { return int64(uint64(s) ^ stampBias) }

func (s stamp) isZero() bool        { return s == 0 }
func (s stamp) before(u stamp) bool { return s < u }
func (s stamp) after(u stamp) bool  { return s > u }

// later is the later of a and b (a set one, when only one is).
func later(a, b stamp) stamp { return max(a, b) }

// sub is s-u, saturated as time.Time's Sub is (an unset stamp is a time 292 years or more
// before any other).
func (s stamp) sub(u stamp) time.Duration {
	d := time.Duration(s - u) // the difference, mod 2^64
	if s >= u {
		if d < 0 || u == 0 && s != 0 {
			return math.MaxInt64
		}
		return d
	}
	if d > 0 || s == 0 {
		return math.MinInt64
	}
	return d
}

// add is s+d, clamped to what a stamp holds; an unset stamp moved by a duration becomes the
// earliest time (the zero time plus any duration is before it).
func (s stamp) add(d time.Duration) stamp {
	if s == 0 {
		if d == 0 {
			return 0
		}
		return stampMin
	}
	r := s + stamp(d)
	switch {
	case d > 0 && r < s:
		return stampMax
	case d < 0 && (r > s || r == 0):
		return stampMin
	}
	return r
}
