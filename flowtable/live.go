package flowtable

import (
	"time"

	"github.com/tcpstate/tcpstate/tracker"
)

// Live capture support. The table still reads no clock: a live capture passes the wall-clock
// time in, so that timers (TIME_WAIT, SYN retries) run out while the wire is silent, and hands
// finished connections out so memory stays bounded by the connections open at once.

// Tick evaluates every open connection as of now without a packet: timers that expired by now
// fire (with their events, stamped at their deadline) and diagnoses are brought up to date.
// A connection whose last packet is not before now is left alone: its packet already
// evaluated it at a later instant. Tick advances the table's clock (Now) to now.
func (t *Table) Tick(now time.Time) {
	if now.After(t.Now) {
		t.Now = now
		t.tr.Advance(now)
	}
	for _, c := range t.conns {
		if c.Done() || !now.After(c.LastSeen) {
			continue
		}
		t.tr.Evaluate(c, now)
	}
}

// Release hands every finished connection to fn, diagnosed as of now, and forgets it: it is
// no longer in Conns, and a later packet on its 4-tuple starts a new connection. Finished means
// replaced by a new instance of its 4-tuple, or both endpoints CLOSED (after timers, as of the
// last Tick or packet) and no packet for quiet. The quiet time keeps stragglers (a segment that
// crossed a RST, a late retransmission) on the connection they belong to. Connection IDs are
// never reused. Release returns the number of connections released.
func (t *Table) Release(now time.Time, quiet time.Duration, fn func(*tracker.Conn)) int {
	kept, keptAt := t.conns[:0], t.at[:0]
	n := 0
	for i, c := range t.conns {
		finished := c.Done() || c.Client.State == tracker.Closed && c.Server.State == tracker.Closed && !now.Before(c.LastSeen.Add(quiet))
		if !finished {
			kept, keptAt = append(kept, c), append(keptAt, t.at[i])
			continue
		}
		if !c.Done() {
			t.tr.Rediagnose(c, now)
		}
		t.forget(t.at[i])
		n++
		if fn != nil {
			fn(c)
		}
	}
	clear(t.conns[len(kept):]) // drop the references, so released connections can be freed
	t.conns, t.at = kept, keptAt
	return n
}
