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
	var conns []*Conn
	t.copies(func() *Conn { return &Conn{} }, func(c *Conn) { conns = append(conns, c) })
	slices.SortFunc(conns, func(a, b *Conn) int { return cmp.Compare(a.ID, b.ID) })
	for _, c := range conns {
		if t.evaluateCopy(c, at) {
			fn(c)
		}
	}
}

// Visit is Snapshot in no particular order, through one Conn reused for every connection (fn
// must not keep it): what counting them needs (the metrics of a file run), without a copy of
// the whole table in memory.
func (t *Tracker) Visit(at time.Time, fn func(*Conn)) {
	var scratch Conn
	t.copies(func() *Conn { scratch = Conn{}; return &scratch }, func(c *Conn) {
		if t.evaluateCopy(c, at) {
			fn(c)
		}
	})
}

// copies hands fn a copy of every connection the tracker holds, each in a Conn from alloc.
func (t *Tracker) copies(alloc func() *Conn, fn func(*Conn)) {
	var own codecState // copies of live connections; dormant ones unpack through the stream's
	if t.st == nil {
		for _, c := range t.conns {
			cp := alloc()
			own.unpackConn(own.packConn(c), cp, &t.cfg.Zeek)
			fn(cp)
		}
		return
	}
	for ei := int32(0); ei < t.ents.n; ei++ {
		e := t.ents.at(ei)
		switch {
		case e.state == entFree:
		case e.c != nil:
			cp := alloc()
			own.unpackConn(own.packConn(e.c), cp, &t.cfg.Zeek)
			fn(cp)
		default:
			cp := alloc()
			t.unpack(e.blob, cp)
			fn(cp)
		}
	}
}

// evaluateCopy brings a copy up to instant at and reports whether it is still open then.
func (t *Tracker) evaluateCopy(c *Conn, at time.Time) bool {
	onEvent := t.cfg.OnEvent
	t.cfg.OnEvent = nil // a copy's timers are not the run's events
	if !c.done && at.After(c.LastSeen) {
		t.settle(c, at, nil, [2]State{c.Client.State, c.Server.State})
	}
	c.diagnose(at, &t.cfg.Profile, &t.details)
	c.AsOf = at
	t.cfg.OnEvent = onEvent
	return c.Open()
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
