package tracker

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// tableDerive is derive as the table reads, both acknowledgments computed up front: derive
// must give the same state for any evidence at any time.
func (e *evidence) tableDerive(now capture.Time) State {
	synAcked := e.synAcked || e.nSYN <= e.retries && confirmed(e.synAckPending, e.lastSYN, e.prevSYNGap, now)
	finAcked := e.finAcked || confirmed(e.finAckPending, e.lastFIN, e.prevFINGap, now)
	opened := e.sentSYN || e.sentSYNACK || e.midstream
	synced := e.midstream || (e.gotSYN && synAcked) || (e.gotSYN && e.sentFIN)
	switch {
	case e.sentRST || e.gotRST || e.replaced:
		return Closed
	case !opened:
		return Closed
	case !synced && e.sentSYN && !e.gotSYN:
		return SynSent
	case !synced:
		return SynReceived
	case !e.sentFIN && !e.gotFIN:
		return Established
	case !e.sentFIN && e.gotFIN:
		return CloseWait
	case !finAcked && !e.gotFIN:
		return FinWait1
	case finAcked && !e.gotFIN:
		return FinWait2
	case !finAcked && e.finPassive:
		return LastAck
	case !finAcked:
		return Closing
	case e.finPassive:
		return Closed
	default:
		return TimeWait
	}
}

// TestDeriveAsTable compares derive with the table over random evidence: every combination of
// the flags, pending acknowledgments confirmed or not by now.
func TestDeriveAsTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := capture.TimeOf(time.Unix(1700000000, 0))
	at := func() capture.Time {
		if rng.IntN(3) == 0 {
			return 0
		}
		return base.Add(time.Duration(rng.IntN(10000)) * time.Millisecond)
	}
	seen := map[State]int{}
	for i := 0; i < 200000; i++ {
		b := rng.Uint32()
		bit := func(k int) bool { return b>>k&1 != 0 && (k < 3 || rng.IntN(2) == 0) }
		e := evidence{
			sentRST: bit(0) && bit(1), gotRST: bit(2) && bit(3), replaced: bit(4) && bit(5),
			sentSYN: bit(6), sentSYNACK: bit(7), midstream: bit(8) && bit(9), sentFIN: bit(10),
			finPassive: bit(11), gotSYN: bit(12), synAcked: bit(13), finAcked: bit(14), gotFIN: bit(15),
			nSYN: rng.IntN(8), retries: rng.IntN(7),
			synAckPending: at(), finAckPending: at(), lastSYN: at(), lastFIN: at(),
			prevSYNGap: time.Duration(rng.IntN(3000)-500) * time.Millisecond,
			prevFINGap: time.Duration(rng.IntN(3000)-500) * time.Millisecond,
		}
		now := base.Add(time.Duration(rng.IntN(20000)) * time.Millisecond)
		got, want := e.derive(now), e.tableDerive(now)
		if got != want {
			t.Fatalf("%+v at %v: derive %v, table %v", e, now, got, want)
		}
		seen[want]++
	}
	for _, s := range []State{Closed, SynSent, SynReceived, Established, CloseWait, FinWait1, FinWait2,
		LastAck, Closing, TimeWait} {
		if seen[s] < 100 {
			t.Errorf("state %v reached only %d times", s, seen[s])
		}
	}
}
