// Package flowtable is the flow table: which connection instance each packet belongs to, and
// the connections' lifecycle. It hashes the 4-tuple, finds the current instance, starts a new
// one when the TCP engine (package tracker) says a SYN begins one, feeds each segment to the
// engine and to the connection's Zeek view (package zeek), and decides when a connection is
// finished, evicted or timed out. Streaming (StreamConfig), it packs the connections it is not
// using into compact blobs, hands finished ones out and forgets them, so that memory follows
// the connections open at once; Reorder puts them back in order of first packet. Its bulk
// (blobs, large indexes, entries) is memory of its own outside the Go heap (arena.go,
// MappedBytes), with no Go pointer in it. It reads no
// clock: every instant comes from a segment or from the caller (a live capture's Tick).
package flowtable

import (
	"net/netip"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/osfp"
	"github.com/tcpstate/tcpstate/reassembly"
	"github.com/tcpstate/tcpstate/tracker"
	"github.com/tcpstate/tcpstate/zeek"
)

// Config sets up a Table.
type Config struct {
	// Profile, OS and OnEvent set up the TCP engine (tracker.Config).
	Profile tracker.Profile
	OS      osfp.Policy
	OnEvent func(tracker.Event)
	// OnSegment, if set, receives every segment after it was applied, with the connection it
	// belongs to and what it was in its direction's sequence space (duplicates included, with
	// kind Duplicate). For reports that draw packets (HTML ladder diagrams).
	OnSegment func(c *tracker.Conn, seg *capture.Segment, kind reassembly.Kind)
	// Zeek says which Zeek setup the Zeek view mimics (zero: Zeek with its base scripts).
	Zeek zeek.Config
	// Stream, if set, makes the table hand out connections as they finish and forget them, so
	// that its memory follows the connections open at once, not the capture's length (see
	// StreamConfig). Conns is then empty.
	Stream *StreamConfig
	// NextID, if set, numbers new connections (tables that share one numbering: the shards of
	// a multi-core live capture); unset, a table counts its own.
	NextID func() uint64
}

// Stats counts what the table did.
type Stats struct {
	Segments    uint64
	Connections uint64
	Duplicates  uint64
	// Streaming runs only (StreamConfig).
	Evicted  uint64 // dropped from a full table (--max-flows) before they finished
	TimedOut uint64 // finished by the idle timeout
	Peak     uint64 // the most connections tracked at once
}

// Table holds the current instance of every 4-tuple, and every instance seen (or, streaming,
// every instance not finished yet).
type Table struct {
	cfg   Config
	tr    *tracker.Tracker
	index flowIndex
	// quiet indexes the connections closed at both ends (streaming only): most packets belong
	// to connections still open, and an index of those alone stays in the cache however many
	// closed ones wait out their quiet time (workload A: 2,000 open among 100,000). A packet
	// not found in index is looked up here (a late packet, or a SYN reusing a 4-tuple).
	quiet flowIndex
	ents  entries
	free  []int32 // entry numbers to reuse
	// lives are the connections held unpacked (entry.live numbers them); freeLives, the
	// numbers to reuse.
	lives     []*live
	freeLives []int32
	conns     []*tracker.Conn // every instance in ID order (not kept when streaming)
	at        []int32         // the entry of each of conns
	// Now is the time of the latest segment: the table's clock.
	Now   time.Time
	stats Stats
	st    *stream // nil unless streaming
	// draining: every entry is being forgotten (the end of a streaming run), so the index is
	// dropped whole afterwards rather than entry by entry.
	draining bool
}

// live is a connection the table holds unpacked, with the table's bookkeeping beside it (none
// of which is part of the connection's state): its entry, its place among the live connections
// of a streaming run (most recently active first), and its first segment.
type live struct {
	c   tracker.Conn // first: a *tracker.Conn the table handed out is its live (liveOf)
	ent int32
	num int32 // 1 + its number in Table.lives while an entry holds it (0: none)
	// prev, next link the live list; touched is when (in packets of the stream) it last had
	// one; linked, when it was put at the head of the list: touched later means it moved up
	// since (a lazy LRU).
	prev, next      *live
	touched, linked uint64
	// first is the connection's first segment, while streaming: while it has no other, its
	// packed form is this segment (dormant.go).
	first capture.Segment
}

// liveOf is the live a connection handed out by the table belongs to. Every Conn the table
// makes is the first field of a live, so the two share an address (the container-of idiom):
// that keeps the connection one pointer away from its entry on the per-packet path, and lets
// connections handed off (StreamConfig.Handoff) come back to the pool they were taken from.
func liveOf(c *tracker.Conn) *live { return (*live)(unsafe.Pointer(c)) }

// New returns an empty table.
func New(cfg Config) *Table {
	t := &Table{cfg: cfg, tr: tracker.New(tracker.Config{Profile: cfg.Profile, OS: cfg.OS, OnEvent: cfg.OnEvent})}
	t.cfg.Profile = *t.tr.Profile()
	if cfg.Stream != nil {
		t.st = newStream(*cfg.Stream)
		t.st.blobs = newArena(t)
	}
	return t
}

// Stats reports counts so far.
func (t *Table) Stats() Stats { return t.stats }

// Conns returns every connection instance in order of first packet (not streaming).
func (t *Table) Conns() []*tracker.Conn { return t.conns }

// Add processes one segment.
func (t *Table) Add(seg *capture.Segment) { t.AddAt(seg, FlowHash(seg.Src, seg.Dst), 0, seg.Time) }

// AddAt processes seg, of flow hash h. A non-zero ord is the segment's number in the whole
// capture: a shard of a parallel run (package run) names the connections it starts by it. now
// is the capture's clock (the latest time of any segment so far, whichever shard it went to).
func (t *Table) AddAt(seg *capture.Segment, h uint64, ord uint64, now time.Time) {
	t.stats.Segments++
	t.Advance(now)
	ei := t.lookup(h, seg.Src, seg.Dst)
	var l *live
	if ei >= 0 {
		l = t.wake(ei)
		if t.st != nil && t.st.over(t, ei) {
			ei, l = -1, nil // finished, reported and forgotten: this packet starts anew
		}
	}
	if l != nil && t.tr.StartsNewInstance(&l.c, seg) {
		old, oldEi := l, ei
		l = t.newConn(seg, ord)
		t.tr.Link(&old.c, &l.c, seg)
		if t.st != nil && t.st.cfg.OnNew != nil {
			t.st.cfg.OnNew(&l.c)
		}
		ei = t.attach(l, h, oldEi)
	} else if l == nil {
		if t.st != nil {
			t.st.makeRoom(t)
		}
		l = t.newConn(seg, ord)
		if t.st != nil && t.st.cfg.OnNew != nil {
			t.st.cfg.OnNew(&l.c)
		}
		ei = t.attach(l, h, -1)
	}
	if e := t.ents.at(ei); secs(seg.Time) > e.lastAny {
		e.lastAny = secs(seg.Time)
	}

	c := &l.c
	before := [2]tracker.State{c.Client.State, c.Server.State}
	kind := t.tr.Apply(c, seg, false)
	c.Zeek.Observe(seg, zeek.Side(c.SideOf(seg)))
	if kind == reassembly.Duplicate {
		t.stats.Duplicates++
	}
	if t.cfg.OnSegment != nil {
		t.cfg.OnSegment(c, seg, kind)
	}
	if t.st != nil {
		// Did this segment close it at both ends (not: was it closed already)?
		closing := !(ended(before[0]) && ended(before[1])) && ended(c.Client.State) && ended(c.Server.State)
		t.st.touched(t, ei, l, closing)
	}
}

// Advance moves the table's clock to now, if that is later.
func (t *Table) Advance(now time.Time) {
	if now.After(t.Now) {
		t.Now = now
		t.tr.Advance(now)
		if t.st != nil {
			t.st.clock(t)
		}
	}
}

// lookup finds the entry of the current instance of seg's 4-tuple (hash h); -1 if none.
func (t *Table) lookup(h uint64, src, dst netip.AddrPort) int32 {
	if ei := t.find(&t.index, h, src, dst); ei >= 0 || t.quiet.n == 0 {
		return ei
	}
	return t.find(&t.quiet, h, src, dst)
}

// find looks the 4-tuple up in index x.
func (t *Table) find(x *flowIndex, h uint64, src, dst netip.AddrPort) int32 {
	if len(x.slots) == 0 {
		return -1
	}
	m := x.mask()
	for i := h & m; ; i = (i + 1) & m {
		s := x.slots[i]
		if s == 0 {
			return -1
		}
		if uint32(s>>32) != uint32(h) {
			continue
		}
		ei := int32(uint32(s)) - 1
		e := t.ents.at(ei)
		var cl, sv netip.AddrPort
		if e.live != 0 {
			c := &t.lives[e.live-1].c
			cl, sv = c.Client.Addr, c.Server.Addr
		} else {
			cl, sv = t.st.key(ei, e)
		}
		if cl == src && sv == dst || cl == dst && sv == src {
			return ei
		}
	}
}

// quieten moves entry ei from the index to the quiet index: its connection just closed at
// both ends.
func (t *Table) quieten(ei int32) {
	e := t.ents.at(ei)
	if e.state != entIndexed {
		return
	}
	t.index.remove(e.hashLo, ei)
	t.quiet.insert(e.hashLo, ei, t)
	e.state = entQuiet
}

// wake returns the connection of entry ei, unpacking it if it is dormant.
func (t *Table) wake(ei int32) *live {
	if l := t.liveOf(t.ents.at(ei)); l != nil {
		return l
	}
	return t.st.wake(t, ei)
}

// liveOf is the live connection of entry e (nil: dormant, or free).
func (t *Table) liveOf(e *entry) *live {
	if e.live == 0 {
		return nil
	}
	return t.lives[e.live-1]
}

// hold makes l the live connection of entry e.
func (t *Table) hold(e *entry, l *live) {
	if n := len(t.freeLives); n > 0 {
		l.num = t.freeLives[n-1] + 1
		t.freeLives = t.freeLives[:n-1]
		t.lives[l.num-1] = l
	} else {
		t.lives = append(t.lives, l)
		l.num = int32(len(t.lives))
	}
	e.live = l.num
}

// letGo: entry e no longer holds its live connection (packed, or forgotten).
func (t *Table) letGo(e *entry) {
	if e.live == 0 {
		return
	}
	l := t.lives[e.live-1]
	t.lives[e.live-1] = nil
	t.freeLives = append(t.freeLives, e.live-1)
	l.num, e.live = 0, 0
}

// attach gives l an entry (hash h). If it replaces the instance of entry old on the same
// 4-tuple, it takes old's place in the index and old is detached: it waits for the end, or,
// streaming, is finished right away when nothing about it can change any more.
func (t *Table) attach(l *live, h uint64, old int32) int32 {
	var ei int32
	if n := len(t.free); n > 0 {
		ei = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		ei = t.ents.add(t)
	}
	e := t.ents.at(ei)
	*e = entry{hashLo: uint32(h), state: entIndexed, lastAny: secs(l.c.FirstSeen), half: true}
	t.hold(e, l)
	l.ent = ei
	if t.st == nil {
		t.at = append(t.at, ei)
	}
	switch {
	case old < 0:
		t.index.insert(uint32(h), ei, t)
	case t.ents.at(old).state == entQuiet:
		t.quiet.remove(uint32(h), old)
		t.index.insert(uint32(h), ei, t)
	default:
		t.index.replace(uint32(h), old, ei)
	}
	if old >= 0 {
		t.ents.at(old).state = entDetached
	}
	if t.st != nil {
		t.st.attached(t, ei, old)
	}
	return ei
}

// forget frees entry ei, taking it out of the index if it is there.
func (t *Table) forget(ei int32) {
	e := t.ents.at(ei)
	if !t.draining {
		switch e.state {
		case entIndexed:
			t.index.remove(e.hashLo, ei)
		case entQuiet:
			t.quiet.remove(e.hashLo, ei)
		}
	}
	t.letGo(e)
	*e = entry{}
	if !t.draining { // else every entry goes (entries.reset)
		t.free = append(t.free, ei)
	}
}

// Finish evaluates every connection as of now (normally the last packet's time, or --at),
// running the timers that expired, and computes diagnoses; streaming, it hands every
// connection left out.
func (t *Table) Finish(now time.Time) {
	if now.IsZero() {
		now = t.Now
	}
	if t.st != nil {
		t.st.finishAll(t, now)
		return
	}
	for _, c := range t.conns {
		t.tr.Evaluate(c, now)
	}
}

// newConn starts an instance, deciding which side is the client. Its ID is ord when given (a
// shard of a parallel run), else the count of every instance ever created (Release forgets
// finished ones from t.conns).
func (t *Table) newConn(seg *capture.Segment, ord uint64) *live {
	t.stats.Connections++
	id := t.stats.Connections
	if ord != 0 {
		id = ord
	} else if t.cfg.NextID != nil {
		id = t.cfg.NextID()
	}
	var l *live
	if t.st != nil {
		l = t.st.alloc()
		l.first = *seg
	} else {
		l = &live{}
	}
	t.tr.Start(&l.c, seg, id)
	l.c.Zeek.Bind(&t.cfg.Zeek)
	if t.st == nil {
		t.conns = append(t.conns, &l.c)
	}
	return l
}
