package capture

import (
	"math"
	"time"
)

// Time is a packet time as the engine keeps it (tracker evidence, Zeek rows, timers): Unix
// nanoseconds with the sign bit flipped, in a uint64. It is a third of a time.Time's size,
// holds no pointer and compares as an integer, yet keeps what a time.Time gives the engine:
//
//   - 0 is unset (a time.Time's zero), and it comes before every time, as the zero time does;
//     every instant an int64 of nanoseconds holds is a time distinct from it, the Unix epoch
//     included (a capture whose timestamps are all zero is a capture at the epoch, not one
//     without times);
//   - a time outside what an int64 of nanoseconds holds (before 1677-09-21, after 2262-04-11:
//     pcap times are 1970 to 2106, pcapng ones anything) is clamped to the nearest one, so
//     that such times still compare in order rather than wrap;
//   - Sub and Add saturate as time.Time's Sub and Add do, and an unset Time counts as a time
//     before all others (Sub) that a duration moves to the first one (Add).
//
// Segment.Time and the times that leave the engine (Endpoint.Since, Deadline, events, Zeek
// rows) are time.Time: Std converts.
type Time uint64

const (
	timeBias      = 1 << 63 // a Time is its Unix nanoseconds plus this (mod 2^64)
	TimeMin  Time = 1       // the earliest time a Time holds: the first nanosecond after unset
	TimeMax  Time = math.MaxUint64
)

// Bounds of the times a Time holds exactly, in Unix seconds: beyond them, TimeOf checks.
const timeSafeSec = 9223372036 // math.MaxInt64 / 1e9

var (
	timeMinStd = time.Unix(0, math.MinInt64+1).UTC()
	timeMaxStd = time.Unix(0, math.MaxInt64).UTC()
)

// TimeOf is t as a Time: unset for the zero time, clamped when out of range.
func TimeOf(t time.Time) Time {
	sec := t.Unix()
	if -timeSafeSec < sec && sec < timeSafeSec {
		return Time(uint64(sec*1e9+int64(t.Nanosecond())) ^ timeBias)
	}
	return timeOfFar(t)
}

// timeOfFar is TimeOf for a time at least 292 years from the epoch.
func timeOfFar(t time.Time) Time {
	switch {
	case t.IsZero():
		return 0
	case t.Before(timeMinStd):
		return TimeMin
	case t.After(timeMaxStd):
		return TimeMax
	}
	return Time(uint64(t.UnixNano()) ^ timeBias)
}

// Std is s as a time.Time (UTC; the zero time when unset).
func (s Time) Std() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.UnixNano()).UTC()
}

// UnixNano is s in Unix nanoseconds (set times only).
func (s Time) UnixNano() int64 { return int64(uint64(s) ^ timeBias) }

func (s Time) IsZero() bool       { return s == 0 }
func (s Time) Before(u Time) bool { return s < u }
func (s Time) After(u Time) bool  { return s > u }

// Sub is s-u, saturated as time.Time's Sub is (an unset Time is a time 292 years or more
// before any other).
func (s Time) Sub(u Time) time.Duration {
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

// Add is s+d, clamped to what a Time holds; an unset Time moved by a duration becomes the
// earliest time (the zero time plus any duration is before it).
func (s Time) Add(d time.Duration) Time {
	if s == 0 {
		if d == 0 {
			return 0
		}
		return TimeMin
	}
	r := s + Time(d)
	switch {
	case d > 0 && r < s:
		return TimeMax
	case d < 0 && (r > s || r == 0):
		return TimeMin
	}
	return r
}
