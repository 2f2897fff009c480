package tracker

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"time"
)

// Streaming: a tracker that hands out each connection once it is finished and forgets it, so
// that a capture of any length is read in memory that follows the connections tracked at once.
// It reads no clock: everything below is decided by segment times, so a capture replays the
// same way every time, and the same way whatever else is in the run (other shards of a
// parallel run, other --shard slices of the capture).
//
// Finished means one of:
//   - closed: both endpoints CLOSED (past TIME_WAIT and any other timer) and the 4-tuple quiet
//     for StreamConfig.Quiet. Nothing about it can change any more, except through a packet on
//     its 4-tuple; a packet after that starts a new connection, as the hosts themselves would
//     treat it (their sockets are gone).
//   - replaced: a new SYN took its 4-tuple over (port reuse) and it is closed at both ends.
//   - idle: no packet for StreamConfig.IdleTimeout: reported as it stood then (TimedOut).
//   - evicted: the table is full (StreamConfig.MaxFlows) and it is the stalest (Evicted).
//   - the end of the input: every connection left, as of Finish's instant.
//
// Closed and idle are decided on whole seconds of the capture's clock (Quiet and IdleTimeout
// are rounded up to seconds), the same way whenever they are checked: lazily, when the next packet of the 4-tuple arrives, by a sweep
// that frees memory, or at the end. A closed connection reports the same states and diagnoses
// whenever it is evaluated, so what it says does not depend on when it was found finished.
//
// Only MaxLive connections are kept live (as Conns); the least recently active others are
// packed (dormant.go) and unpacked when a packet arrives for them. A connection is also packed
// on the segment that closes it at both ends (touched): from then on only timers move it.

// StreamConfig sets up a streaming tracker (Config.Stream).
type StreamConfig struct {
	// OnFinished receives every connection once it is finished, diagnosed and final. They come
	// in the order they finish, not by ID (Reorder puts them back in order). The tracker
	// reuses c once OnFinished returns, unless Handoff is set.
	OnFinished func(c *Conn)
	// Handoff: OnFinished keeps the connection; the tracker never touches it again.
	Handoff bool
	// OnNew, if set, is told of each connection instance as the tracker starts it.
	OnNew func(c *Conn)
	// MaxLive is how many connections are kept unpacked (0: DefaultMaxLive; negative: none,
	// every connection is packed after each packet, for tests).
	MaxLive int
	// MaxFlows caps the connections tracked at once (0: no cap). A new connection beyond it
	// evicts the stalest: first those that never had a reply (half-open: SYN_SENT,
	// SYN_RECEIVED, one-sided), then the longest idle.
	MaxFlows int
	// Quiet is how long a connection closed at both ends must be silent to be finished
	// (0: DefaultQuiet).
	Quiet time.Duration
	// IdleTimeout finishes a connection silent this long, as it stands (0: never).
	IdleTimeout time.Duration
}

// Defaults of StreamConfig. A closed connection is kept (packed) for 5 minutes of silence: a
// late retransmission, a straggler that crossed a RST, or the same client reusing the 4-tuple
// a few minutes later (the port-reused link) still find it, as they do when every connection
// is kept to the end; on the whole test corpus the output is then the same byte for byte.
const (
	DefaultMaxLive = 4096
	DefaultQuiet   = 5 * time.Minute
)

// far is how far ahead "closed for good" is checked.
const far = 100 * 365 * 24 * time.Hour

// Why a connection is finished.
const (
	endClosed = iota
	endIdle
	endEvicted
	endInput
)

type stream struct {
	cfg   StreamConfig
	cs    codecState
	pool  []*Conn
	quiet int64 // cfg.Quiet in seconds
	idle  int64 // cfg.IdleTimeout in seconds (0: none)

	// Live connections, most recently active first.
	head, tail     *Conn
	nLive, nPacked int
	tracked        int // entries in use

	boundary   int64  // the latest whole second the clock has passed (Unix)
	sinceSweep uint64 // segments since the packed connections were last swept
	ticks      uint64 // the clock of the live list (see touched)

	// Eviction lists (MaxFlows only): every entry is in one, most recently active first.
	// links[ei] links entry ei, as entry numbers + 1.
	lists [2]struct{ head, tail int32 } // [0] half-open, [1] the others
	links []struct{ prev, next int32 }

	// back brings connections handed off (Handoff) back for reuse (a parallel run's merger).
	back <-chan []*Conn
}

func newStream(cfg StreamConfig) *stream {
	if cfg.MaxLive == 0 {
		cfg.MaxLive = DefaultMaxLive
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	ceil := func(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
	return &stream{cfg: cfg, quiet: ceil(cfg.Quiet), idle: ceil(max(cfg.IdleTimeout, 0)), boundary: -1}
}

// alloc returns a zero Conn, recycled when one is at hand.
func (st *stream) alloc() *Conn {
	for len(st.pool) == 0 && st.back != nil {
		select {
		case cs := <-st.back:
			for _, c := range cs {
				st.recycle(c)
			}
			continue
		default:
		}
		break
	}
	if n := len(st.pool); n > 0 {
		c := st.pool[n-1]
		st.pool = st.pool[:n-1]
		return c
	}
	return &Conn{}
}

// recycle keeps c for a new connection, with the buffers it grew (Zeek rows, diagnoses), so
// that tracking allocates nothing once enough connections have been through.
func (st *stream) recycle(c *Conn) {
	if len(st.pool) >= 256 {
		return
	}
	rows, diags, notes := c.Zeek.rows, c.Diagnoses[:0], c.rstNotes[:0]
	*c = Conn{Diagnoses: diags, rstNotes: notes}
	c.Zeek.rows = rows[:0]
	st.pool = append(st.pool, c)
}

// key is the 4-tuple of a packed entry, for the flow lookup.
func (st *stream) key(e *entry) (a, b netip.AddrPort) { return st.cs.key(e.blob) }

// clock is called when the tracker's clock moved: on a new second, sweep.
func (st *stream) clock(t *Tracker) {
	b := t.Now.Unix()
	if b <= st.boundary {
		return
	}
	st.boundary = b
	st.sweep(t)
}

// sweep finishes what is finished among the live connections, and, once enough segments went
// by to pay for it (a quarter of their number), among the packed ones.
func (st *stream) sweep(t *Tracker) {
	for c := st.tail; c != nil; {
		prev := c.rt.prev
		st.over(t, c.rt.ent)
		c = prev
	}
	if st.sinceSweep < uint64(st.nPacked/4) || st.nPacked == 0 {
		return
	}
	st.sinceSweep = 0
	for ei := int32(0); ei < t.ents.n; ei++ {
		e := t.ents.at(ei)
		if e.state == entFree || e.c != nil || int64(e.hint) > st.boundary {
			continue
		}
		t.wake(ei)
		if !st.over(t, ei) {
			st.pack(t, ei)
		}
	}
}

// over checks whether the connection of entry ei is finished as of the latest whole second
// and, if it is, finishes it. It reports whether it did.
func (st *stream) over(t *Tracker, ei int32) bool {
	e := t.ents.at(ei)
	b := st.boundary
	last := int64(e.lastAny)
	idle := st.idle > 0 && last+st.idle <= b
	if !idle && last+st.quiet > b {
		return false
	}
	c := t.wake(ei)
	if idle {
		// Finished at the first second past the timeout, however much later it is found.
		st.finish(t, ei, c, time.Unix(last+st.idle, 0).UTC(), endIdle)
		return true
	}
	if !c.done && st.closedFor(t, c, time.Unix(b, 0).UTC()) {
		st.finish(t, ei, c, t.Now, endClosed)
		return true
	}
	return false
}

// closedFor reports whether both endpoints are CLOSED at instant at and stay so.
func (st *stream) closedFor(t *Tracker, c *Conn, at time.Time) bool {
	now, last := stampOf(at), stampOf(c.LastSeen)
	for _, ep := range [2]*Endpoint{&c.Client, &c.Server} {
		p := t.profileOf(ep)
		if s, _, _ := ep.evaluate(now, p, last); s != Closed {
			return false
		}
		if s, _, _ := ep.evaluate(last.add(far), p, last); s != Closed {
			return false
		}
	}
	return true
}

// finish evaluates c as of instant at, hands it out and forgets its entry.
func (st *stream) finish(t *Tracker, ei int32, c *Conn, at time.Time, why int) {
	if !c.done {
		t.settle(c, at, nil, [2]State{c.Client.State, c.Server.State})
	}
	c.diagnose(at, &t.cfg.Profile, &t.details)
	switch why {
	case endEvicted:
		c.Evicted = true
		t.stats.Evicted++
	case endIdle:
		if c.Client.State != Closed || c.Server.State != Closed {
			c.TimedOut = true
			t.stats.TimedOut++
		}
	}
	st.unlinkLive(c)
	st.nLive--
	st.listRemove(t, ei)
	st.tracked--
	t.forget(ei)
	if st.cfg.OnFinished != nil {
		st.cfg.OnFinished(c)
	}
	if !st.cfg.Handoff {
		st.recycle(c)
	}
}

// attached is told of a new entry ei; old >= 0 is the entry it took the 4-tuple from.
func (st *stream) attached(t *Tracker, ei, old int32) {
	st.tracked++
	t.stats.Peak = max(t.stats.Peak, uint64(st.tracked))
	c := t.ents.at(ei).c
	st.linkLive(c)
	st.nLive++
	st.listPush(t, ei)
	if old >= 0 {
		if oc := t.wake(old); st.closedFor(t, oc, t.Now) {
			st.finish(t, old, oc, t.Now, endClosed)
		}
	}
}

// touched is told that a segment went to the connection of entry ei. The live list is kept in
// order lazily: the connection is only stamped here (moving it would touch two others, each
// a cache miss); packing moves those stamped since they were put at the head, and packs the
// others.
func (st *stream) touched(t *Tracker, ei int32, c *Conn, closing bool) {
	st.sinceSweep++
	st.ticks++
	c.rt.touched = st.ticks
	if st.cfg.MaxFlows > 0 {
		e := t.ents.at(ei)
		half := c.DirPackets[0] == 0 || c.DirPackets[1] == 0
		if half != e.half || st.lists[listOf(e)].head != ei+1 {
			st.listRemove(t, ei)
			e.half = half
			st.listPush(t, ei)
		}
	}
	if closing && st.cfg.MaxLive >= 0 {
		// It just closed at both ends: only timers can move it now, and packets seldom come.
		// Pack it while it is in the cache, and leave the live places to connections still
		// talking (a late packet unpacks it, exactly as it was). Only on closing: packets that
		// keep coming after the close (a flood on a dead 4-tuple) keep it live, not packed and
		// unpacked each time.
		//
		// Packing and unpacking are about a third of the instructions of workload A (100k
		// short connections, all still in TIME_WAIT or within Quiet at the end of the file),
		// but keeping closed connections unpacked instead was measured slower, not faster:
		// 0.94-1.02 s against 0.68 s on one core, and 285 MB against 53 MB (page faults and
		// cache misses on 100k live Conns of ~2.4 KB cost more than the codec).
		st.pack(t, ei)
		return
	}
	for st.nLive > st.cfg.MaxLive && st.tail != nil {
		if c := st.tail; c.rt.touched > c.rt.linked && st.head != c {
			st.unlinkLive(c)
			st.linkLive(c)
			continue
		}
		st.pack(t, st.tail.rt.ent)
	}
}

// ended: a state only a timer leaves (or none).
func ended(s State) bool { return s == Closed || s == TimeWait }

// linkLive puts c at the head of the live list.
func (st *stream) linkLive(c *Conn) {
	c.rt.prev, c.rt.next = nil, st.head
	if st.head != nil {
		st.head.rt.prev = c
	} else {
		st.tail = c
	}
	st.head = c
	st.ticks++
	c.rt.linked = st.ticks
}

// makeRoom evicts the stalest connections while the table is full.
func (st *stream) makeRoom(t *Tracker) {
	for st.cfg.MaxFlows > 0 && st.tracked >= st.cfg.MaxFlows {
		victim := st.lists[0].tail
		if victim == 0 {
			victim = st.lists[1].tail
		}
		if victim == 0 {
			return
		}
		ei := victim - 1
		st.finish(t, ei, t.wake(ei), t.Now, endEvicted)
	}
}

func (st *stream) unlinkLive(c *Conn) {
	if c.rt.prev != nil {
		c.rt.prev.rt.next = c.rt.next
	} else if st.head == c {
		st.head = c.rt.next
	}
	if c.rt.next != nil {
		c.rt.next.rt.prev = c.rt.prev
	} else if st.tail == c {
		st.tail = c.rt.prev
	}
	c.rt.prev, c.rt.next = nil, nil
}

// pack makes the connection of entry ei dormant.
func (st *stream) pack(t *Tracker, ei int32) {
	e := t.ents.at(ei)
	c := e.c
	e.hint = st.hint(t, e, c)
	if c.onlyFirst() {
		e.blob = st.cs.packSegment(c.ID, &c.rt.first)
	} else {
		e.blob = st.cs.packConn(c)
	}
	e.c = nil
	st.unlinkLive(c)
	st.nLive--
	st.nPacked++
	st.recycle(c)
}

// wake unpacks the dormant connection of entry ei and makes it the most recently active.
func (st *stream) wake(t *Tracker, ei int32) *Conn {
	e := t.ents.at(ei)
	c := st.alloc()
	t.unpack(e.blob, c)
	c.rt.ent = ei
	e.c, e.blob = c, ""
	st.nPacked--
	st.nLive++
	st.linkLive(c)
	return c
}

// hint is the earliest second a packed connection could be finished without another packet:
// the sweep leaves it alone until then. It need not be exact (over decides), only never late.
func (st *stream) hint(t *Tracker, e *entry, c *Conn) uint32 {
	h := int64(math.MaxUint32)
	if st.idle > 0 {
		h = int64(e.lastAny) + st.idle
	}
	if !c.done {
		when := int64(e.lastAny) + st.quiet
		last := stampOf(c.LastSeen)
		for _, ep := range [2]*Endpoint{&c.Client, &c.Server} {
			p := t.profileOf(ep)
			s, since, viaTimer := ep.evaluate(last.add(far), p, last)
			if s != Closed {
				when = math.MaxUint32
				break
			}
			if now, _, _ := ep.evaluate(stampOf(t.Now), p, last); now != Closed && viaTimer {
				when = max(when, int64(secs(since.time())))
			}
		}
		h = min(h, when)
	}
	return uint32(min(max(h, st.boundary+1), math.MaxUint32))
}

// finishAll is Finish for a streaming tracker: every connection left, in ID order.
func (st *stream) finishAll(t *Tracker, now time.Time) {
	type ided struct {
		id uint64
		ei int32
	}
	order := make([]ided, 0, st.tracked)
	for ei := int32(0); ei < t.ents.n; ei++ {
		e := t.ents.at(ei)
		switch {
		case e.state == entFree:
		case e.c != nil:
			order = append(order, ided{e.c.ID, ei})
		default:
			order = append(order, ided{st.cs.id(e.blob), ei})
		}
	}
	slices.SortFunc(order, func(a, b ided) int { return cmp.Compare(a.id, b.id) })
	t.draining = true
	defer func() {
		t.draining = false
		t.index = flowIndex{} // every entry it held is forgotten
	}()
	for _, o := range order {
		ei := o.ei
		e := t.ents.at(ei)
		c := t.wake(ei)
		if st.idle > 0 && int64(e.lastAny)+st.idle <= st.boundary {
			st.over(t, ei)
			continue
		}
		st.finish(t, ei, c, now, endInput)
	}
}

// The eviction lists (MaxFlows): every entry is in one, by whether it is half-open.

func listOf(e *entry) int {
	if e.half {
		return 0
	}
	return 1
}

func (st *stream) listPush(t *Tracker, ei int32) {
	if st.cfg.MaxFlows <= 0 {
		return
	}
	for int(ei) >= len(st.links) {
		st.links = append(st.links, struct{ prev, next int32 }{})
	}
	l := &st.lists[listOf(t.ents.at(ei))]
	st.links[ei].prev, st.links[ei].next = 0, l.head
	if l.head != 0 {
		st.links[l.head-1].prev = ei + 1
	} else {
		l.tail = ei + 1
	}
	l.head = ei + 1
}

func (st *stream) listRemove(t *Tracker, ei int32) {
	if st.cfg.MaxFlows <= 0 {
		return
	}
	l := &st.lists[listOf(t.ents.at(ei))]
	k := &st.links[ei]
	if k.prev != 0 {
		st.links[k.prev-1].next = k.next
	} else if l.head == ei+1 {
		l.head = k.next
	}
	if k.next != 0 {
		st.links[k.next-1].prev = k.prev
	} else if l.tail == ei+1 {
		l.tail = k.prev
	}
	k.prev, k.next = 0, 0
}
