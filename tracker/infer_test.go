package tracker

import (
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/capture"
)

// randomizeEvidence sets every field of e, whatever fields evidence has: booleans true now
// and then, counters small, times unset or not, durations of either sign.
func randomizeEvidence(rng *rand.Rand, e *evidence) {
	v := reflect.ValueOf(e).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem() // unexported: settable this way
		switch {
		case f.Kind() == reflect.Bool:
			f.SetBool(rng.IntN(8) == 0)
		case f.Type() == reflect.TypeFor[capture.Time]():
			if rng.IntN(6) == 0 {
				f.SetUint(uint64(capture.TimeOf(time.Unix(1700000000, rng.Int64N(1e12)))))
			} else {
				f.SetUint(0)
			}
		case f.Type() == reflect.TypeFor[time.Duration]():
			f.SetInt(rng.Int64N(4e9) - 1e9)
		case f.Kind() == reflect.Int:
			if rng.IntN(6) == 0 {
				f.SetInt(int64(rng.IntN(4)))
			} else {
				f.SetInt(0)
			}
		default:
			panic("randomizeEvidence: a field of a new kind: " + f.Type().String())
		}
	}
}

// TestMayInferCoversInference checks settle's shortcut: whenever mayInfer is false, inference
// says (false, "").
func TestMayInferCoversInference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 4))
	states := []State{Closed, SynSent, SynReceived, Established, CloseWait, FinWait1, FinWait2, LastAck,
		Closing, TimeWait}
	skipped, asked := 0, 0
	for i := 0; i < 300000; i++ {
		c := &Conn{RoleInferred: rng.IntN(8) == 0, Midstream: rng.IntN(8) == 0}
		for s := ClientSide; s <= ServerSide; s++ {
			ep := c.endpoint(s)
			randomizeEvidence(rng, &ep.ev)
			ep.State = states[rng.IntN(len(states))]
			ep.Inferred = rng.IntN(4) == 0
			if ep.Inferred {
				ep.Evidence = Evidence{Kind: EvidenceAckLost} // what an earlier evaluation said
			}
			c.finInferred[s] = rng.IntN(8) == 0
			if rng.IntN(8) == 0 {
				c.Dir[s].MissedBytes = uint64(1 + rng.IntN(100))
			}
		}
		side := Side(rng.IntN(2))
		s := states[rng.IntN(len(states))]
		viaTimer := rng.IntN(8) == 0
		if c.mayInfer(side, viaTimer) {
			asked++
			continue
		}
		skipped++
		if inf, ev := c.inference(side, s, viaTimer); inf || ev != (Evidence{}) {
			t.Fatalf("mayInfer false, but inference says %v %+v for %+v side %v state %v", inf, ev, c, side, s)
		}
	}
	if skipped < 10000 || asked < 10000 {
		t.Errorf("%d skipped, %d asked: too few of one", skipped, asked)
	}
}
