package tracker

import (
	"cmp"
	"slices"
	"time"
)

// Snapshots: the connections still open at an instant, as they stand then, without changing
// anything the run will later report (--snapshot-every), so that a connection open for days is
// visible while it lives.

// Open reports whether c is still open: not CLOSED at both ends.
func (c *Conn) Open() bool { return c.Client.State != Closed || c.Server.State != Closed }

// Snapshot hands fn, in ID order, a copy of every connection the tracker holds that is still
// open at instant at, evaluated as of at (timers that ran out by then have fired; diagnoses
// are up to date). The tracker and its connections are left exactly as they were: each copy is
// made by packing the connection (dormant.go, which keeps every field) and unpacking it apart,
// so the run's output is the same with or without snapshots. The copies are fn's to keep.
func (t *Tracker) Snapshot(at time.Time, fn func(*Conn)) {
	var own codecState // copies of live connections; dormant ones unpack through the stream's
	copyOf := func(c *Conn) *Conn {
		blob := own.packConn(c)
		cp := &Conn{}
		own.unpackConn(blob, cp, &t.cfg.Zeek)
		return cp
	}
	var conns []*Conn
	if t.st == nil {
		for _, c := range t.conns {
			conns = append(conns, copyOf(c))
		}
	} else {
		for ei := int32(0); ei < t.ents.n; ei++ {
			e := t.ents.at(ei)
			switch {
			case e.state == entFree:
			case e.c != nil:
				conns = append(conns, copyOf(e.c))
			default:
				cp := &Conn{}
				t.unpack(e.blob, cp)
				conns = append(conns, cp)
			}
		}
	}
	slices.SortFunc(conns, func(a, b *Conn) int { return cmp.Compare(a.ID, b.ID) })
	onEvent := t.cfg.OnEvent
	t.cfg.OnEvent = nil // a copy's timers are not the run's events
	defer func() { t.cfg.OnEvent = onEvent }()
	for _, c := range conns {
		if !c.done && at.After(c.LastSeen) {
			t.settle(c, at, nil, [2]State{c.Client.State, c.Server.State})
		}
		c.diagnose(at, &t.cfg.Profile, &t.details)
		c.AsOf = at
		if c.Open() {
			fn(c)
		}
	}
}

// everyClock calls RunConfig.OnEvery at each multiple of Every the capture's clock passes.
type everyClock struct{ next time.Time }

func (e *everyClock) pass(rc *RunConfig, clock time.Time, t *Tracker) {
	if e.next.IsZero() {
		e.next = clock.Truncate(rc.Every).Add(rc.Every)
		return
	}
	for !clock.Before(e.next) {
		rc.OnEvery(e.next, t)
		e.next = e.next.Add(rc.Every)
	}
}
