package capture

import (
	"math"
	"testing"
	"time"
)

// TestTime: a Time behaves as the time.Time it was made from (order, Sub, Add, the zero
// time as unset and earliest), the epoch included, and clamps times beyond 1678-2262.
func TestTime(t *testing.T) {
	lo, hi := time.Unix(0, math.MinInt64+1).UTC(), time.Unix(0, math.MaxInt64).UTC()
	base := time.Date(2026, 11, 24, 12, 0, 0, 123456789, time.UTC)
	times := []time.Time{{}, time.Unix(0, 0).UTC(), time.Unix(0, 1).UTC(), time.Unix(-1, 999999999).UTC(),
		time.Unix(1<<32-1, 999999000).UTC(), base, base.Add(1), base.Add(-time.Hour), lo, hi, lo.Add(1),
		hi.Add(-1), time.Unix(-9223372036, 0).UTC(), time.Unix(9223372035, 999999999).UTC(),
		time.Unix(9223372036, 0).UTC()}
	in := func(x time.Time) bool { return x.IsZero() || !x.Before(lo) && !x.After(hi) }
	far := []time.Time{lo.Add(-1), hi.Add(1), time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(50000, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(-1<<40, 0).UTC()}
	durs := []time.Duration{0, 1, -1, time.Second, -time.Hour, 100 * 365 * 24 * time.Hour,
		math.MaxInt64, math.MinInt64, math.MaxInt64 - 5, math.MinInt64 + 5}
	for _, x := range times {
		s := TimeOf(x)
		if !in(x) {
			t.Fatalf("%v: not in range", x)
		}
		if got := s.Std(); !got.Equal(x) || got.IsZero() != x.IsZero() || s.IsZero() != x.IsZero() {
			t.Errorf("%v: Time %#x comes back as %v", x, uint64(s), got)
		}
		for _, y := range times {
			u := TimeOf(y)
			if s.Before(u) != x.Before(y) || s.After(u) != x.After(y) || (s == u) != x.Equal(y) {
				t.Errorf("%v vs %v: order differs", x, y)
			}
			if s.Sub(u) != x.Sub(y) {
				t.Errorf("%v - %v: %v, time.Time says %v", x, y, s.Sub(u), x.Sub(y))
			}
			if max(s, u) != TimeOf(map[bool]time.Time{true: x, false: y}[x.After(y)]) {
				t.Errorf("max(%v, %v)", x, y)
			}
		}
		for _, d := range durs {
			want := x.Add(d)
			switch {
			case x.IsZero() && d == 0:
			case want.Before(lo): // the zero time moved is still before every Time
				want = lo
			case want.After(hi):
				want = hi
			}
			if got := s.Add(d); got != TimeOf(want) {
				t.Errorf("%v + %v: %v, want %v", x, d, got.Std(), want)
			}
		}
	}
	for _, x := range far {
		want := TimeMin
		if x.After(hi) {
			want = TimeMax
		}
		if got := TimeOf(x); got != want {
			t.Errorf("%v: Time %#x, want it clamped to %#x", x, uint64(got), uint64(want))
		}
	}
}
