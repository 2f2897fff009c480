package flowtable

import (
	"cmp"
	"slices"
	"time"

	"github.com/tcpstate/tcpstate/tracker"
)

// Snapshots: the connections still open at an instant, as they stand then, without changing
// anything the run will later report (--snapshot-every), so that a connection open for days is
// visible while it lives.

// Snapshot hands fn, in ID order, a copy of every connection the tracker holds that is still
// open at instant at, evaluated as of at (timers that ran out by then have fired; diagnoses
// are up to date). The tracker and its connections are left exactly as they were: each copy is
// made by packing the connection (tracker.Conn.Pack, which keeps every field) and unpacking it apart,
// so the run's output is the same with or without snapshots. The copies are fn's to keep.
func (t *Table) Snapshot(at time.Time, fn func(*tracker.Conn)) {
	var conns []*tracker.Conn
	t.copies(func() *live { return &live{} }, func(c *tracker.Conn) { conns = append(conns, c) })
	slices.SortFunc(conns, func(a, b *tracker.Conn) int { return cmp.Compare(a.ID, b.ID) })
	for _, c := range conns {
		if t.tr.EvaluateCopy(c, at) {
			fn(c)
		}
	}
}

// Visit is Snapshot in no particular order, through one Conn reused for every connection (fn
// must not keep it): what counting them needs (the metrics of a file run), without a copy of
// the whole table in memory.
func (t *Table) Visit(at time.Time, fn func(*tracker.Conn)) {
	var scratch live
	t.copies(func() *live { scratch = live{}; return &scratch }, func(c *tracker.Conn) {
		if t.tr.EvaluateCopy(c, at) {
			fn(c)
		}
	})
}

// copies hands fn a copy of every connection the tracker holds, each in a Conn from alloc.
func (t *Table) copies(alloc func() *live, fn func(*tracker.Conn)) {
	var own codecState // copies of live connections; dormant ones unpack through the stream's
	if t.st == nil {
		for _, c := range t.conns {
			cp := alloc()
			own.unpackConn(own.packConn(c), &cp.c, &t.cfg.Zeek)
			fn(&cp.c)
		}
		return
	}
	for ei := int32(0); ei < t.ents.n; ei++ {
		e := t.ents.at(ei)
		switch {
		case e.state == entFree:
		case e.live != 0:
			cp := alloc()
			own.unpackConn(own.packConn(&t.liveOf(e).c), &cp.c, &t.cfg.Zeek)
			fn(&cp.c)
		default:
			cp := alloc()
			t.unpack(t.st.blob(ei, e), cp)
			fn(&cp.c)
		}
	}
}
