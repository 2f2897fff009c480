package flowtable

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/tracker"
)

// Streaming: a table that hands out each connection once it is finished and forgets it, so
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

// StreamConfig sets up a streaming table (Config.Stream).
type StreamConfig struct {
	// OnFinished receives every connection once it is finished, diagnosed and final. They come
	// in the order they finish, not by ID (Reorder puts them back in order). The table
	// reuses c once OnFinished returns, unless Handoff is set.
	OnFinished func(c *tracker.Conn)
	// Handoff: OnFinished keeps the connection; the table never touches it again.
	Handoff bool
	// OnNew, if set, is told of each connection instance as the table starts it.
	OnNew func(c *tracker.Conn)
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
	// Back, with Handoff, brings connections handed out back for reuse (a parallel run's
	// merger gives them back once written).
	Back <-chan []*tracker.Conn
}

// Defaults of StreamConfig. A closed connection is kept (packed) for 5 minutes of silence: a
// late retransmission, a straggler that crossed a RST, or the same client reusing the 4-tuple
// a few minutes later (the port-reused link) still find it, as they do when every connection
// is kept to the end; on the whole test corpus the output is then the same byte for byte.
const (
	DefaultMaxLive = 4096
	DefaultQuiet   = 5 * time.Minute
)

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
	blobs arena            // where the blobs of dormant entries are (arena.go)
	big   map[int32]string // blobs too large for the arena, by entry
	pool  []*live
	quiet int64 // cfg.Quiet in seconds
	idle  int64 // cfg.IdleTimeout in seconds (0: none)

	// Live connections, most recently active first.
	head, tail     *live
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
	back <-chan []*tracker.Conn
}

func newStream(cfg StreamConfig) *stream {
	if cfg.MaxLive == 0 {
		cfg.MaxLive = DefaultMaxLive
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = DefaultQuiet
	}
	ceil := func(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }
	return &stream{cfg: cfg, quiet: ceil(cfg.Quiet), idle: ceil(max(cfg.IdleTimeout, 0)), boundary: -1, back: cfg.Back}
}

// alloc returns a zero connection, recycled when one is at hand.
func (st *stream) alloc() *live {
	for len(st.pool) == 0 && st.back != nil {
		select {
		case cs := <-st.back:
			for _, c := range cs {
				st.recycle(liveOf(c))
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
	return &live{}
}

// recycle keeps c for a new connection, with the buffers it grew (Zeek rows, diagnoses), so
// that tracking allocates nothing once enough connections have been through.
func (st *stream) recycle(l *live) {
	if len(st.pool) >= 256 {
		return
	}
	l.c.Recycle()
	l.ent, l.prev, l.next, l.touched, l.linked = 0, nil, nil, 0, 0
	st.pool = append(st.pool, l)
}

// key is the 4-tuple of packed entry ei, for the flow lookup.
func (st *stream) key(ei int32, e *entry) (a, b netip.AddrPort) { return st.cs.key(st.blob(ei, e)) }

// blob is the blob of packed entry ei, to decode (in place when it is in the arena).
func (st *stream) blob(ei int32, e *entry) []byte {
	if e.chunk == 0 {
		s := st.big[ei]
		return unsafe.Slice(unsafe.StringData(s), len(s))
	}
	return st.blobs.readable(e.chunk, e.off, e.size)
}

// setBlob makes b the blob of entry ei.
func (st *stream) setBlob(ei int32, e *entry, b []byte) {
	if c, off, ok := st.blobs.store(b); ok {
		e.chunk, e.off, e.size = c, off, uint32(len(b))
		return
	}
	if st.big == nil {
		st.big = map[int32]string{}
	}
	st.big[ei] = string(b)
	e.chunk, e.off, e.size = 0, 0, uint32(len(b))
}

// dropBlob forgets the blob of entry ei.
func (st *stream) dropBlob(ei int32, e *entry) {
	if e.chunk == 0 {
		delete(st.big, ei)
	} else {
		st.blobs.release(e.chunk, e.size)
	}
	e.chunk, e.off, e.size = 0, 0, 0
}

// clock is called when the table's clock moved: on a new second, sweep.
func (st *stream) clock(t *Table) {
	b := t.Now.Unix()
	if b <= st.boundary {
		return
	}
	st.boundary = b
	st.sweep(t)
}

// sweep finishes what is finished among the live connections, and, once enough segments went
// by to pay for it (a quarter of their number), among the packed ones.
func (st *stream) sweep(t *Table) {
	for l := st.tail; l != nil; {
		prev := l.prev
		st.over(t, l.ent)
		l = prev
	}
	if st.sinceSweep < uint64(st.nPacked/4) || st.nPacked == 0 {
		return
	}
	st.sinceSweep = 0
	for ei := int32(0); ei < t.ents.n; ei++ {
		e := t.ents.at(ei)
		if e.state == entFree || e.live != 0 {
			continue
		}
		if st.blobs.sparse(e.chunk) {
			e.chunk, e.off = st.blobs.relocate(e.chunk, e.off, e.size)
		}
		if int64(e.hint) > st.boundary {
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
func (st *stream) over(t *Table, ei int32) bool {
	e := t.ents.at(ei)
	b := st.boundary
	last := int64(e.lastAny)
	idle := st.idle > 0 && last+st.idle <= b
	if !idle && last+st.quiet > b {
		return false
	}
	l := t.wake(ei)
	if idle {
		// Finished at the first second past the timeout, however much later it is found.
		st.finish(t, ei, l, time.Unix(last+st.idle, 0).UTC(), endIdle)
		return true
	}
	if !l.c.Done() && t.tr.ClosedFor(&l.c, time.Unix(b, 0).UTC()) {
		st.finish(t, ei, l, t.Now, endClosed)
		return true
	}
	return false
}

// finish evaluates c as of instant at, hands it out and forgets its entry.
func (st *stream) finish(t *Table, ei int32, l *live, at time.Time, why int) {
	c := &l.c
	t.tr.Evaluate(c, at)
	switch why {
	case endEvicted:
		c.Evicted = true
		t.stats.Evicted++
	case endIdle:
		if c.Client.State != tracker.Closed || c.Server.State != tracker.Closed {
			c.TimedOut = true
			t.stats.TimedOut++
		}
	}
	st.unlinkLive(l)
	st.nLive--
	st.listRemove(t, ei)
	st.tracked--
	t.forget(ei)
	if st.cfg.OnFinished != nil {
		st.cfg.OnFinished(c)
	}
	if !st.cfg.Handoff {
		st.recycle(l)
	}
}

// attached is told of a new entry ei; old >= 0 is the entry it took the 4-tuple from.
func (st *stream) attached(t *Table, ei, old int32) {
	st.tracked++
	t.stats.Peak = max(t.stats.Peak, uint64(st.tracked))
	st.linkLive(t.liveOf(t.ents.at(ei)))
	st.nLive++
	st.listPush(t, ei)
	if old >= 0 {
		if ol := t.wake(old); t.tr.ClosedFor(&ol.c, t.Now) {
			st.finish(t, old, ol, t.Now, endClosed)
		}
	}
}

// touched is told that a segment went to the connection of entry ei. The live list is kept in
// order lazily: the connection is only stamped here (moving it would touch two others, each
// a cache miss); packing moves those stamped since they were put at the head, and packs the
// others.
func (st *stream) touched(t *Table, ei int32, l *live, closing bool) {
	st.sinceSweep++
	st.ticks++
	l.touched = st.ticks
	if st.cfg.MaxFlows > 0 {
		e := t.ents.at(ei)
		half := l.c.DirPackets[0] == 0 || l.c.DirPackets[1] == 0
		if half != e.half || st.lists[listOf(e)].head != ei+1 {
			st.listRemove(t, ei)
			e.half = half
			st.listPush(t, ei)
		}
	}
	if closing {
		t.quieten(ei) // its lookups go to the quiet index from now on
	}
	if closing && st.cfg.MaxLive >= 0 {
		// It just closed at both ends: only timers can move it now, and packets seldom come.
		// Pack it while it is in the cache, and leave the live places to connections still
		// talking (a late packet unpacks it, exactly as it was). Only on closing: packets that
		// keep coming after the close (a flood on a dead 4-tuple) keep it live, not packed and
		// unpacked each time.
		//
		// Packing and unpacking are about a quarter of one core's time on workload A (100k
		// short connections, all still in TIME_WAIT or within Quiet at the end of the file;
		// scripts/profile-parts.sh), but keeping closed connections unpacked instead was
		// measured slower, not faster: 0.94-1.02 s against 0.68 s on one core, and 285 MB
		// against 53 MB (page faults and cache misses on 100k live Conns of ~2.4 KB cost more
		// than the codec). A Conn of a few hundred bytes would change that.
		st.pack(t, ei)
		return
	}
	for st.nLive > st.cfg.MaxLive && st.tail != nil {
		if l := st.tail; l.touched > l.linked && st.head != l {
			st.unlinkLive(l)
			st.linkLive(l)
			continue
		}
		st.pack(t, st.tail.ent)
	}
}

// ended: a state only a timer leaves (or none).
func ended(s tracker.State) bool { return s == tracker.Closed || s == tracker.TimeWait }

// linkLive puts l at the head of the live list.
func (st *stream) linkLive(l *live) {
	l.prev, l.next = nil, st.head
	if st.head != nil {
		st.head.prev = l
	} else {
		st.tail = l
	}
	st.head = l
	st.ticks++
	l.linked = st.ticks
}

// makeRoom evicts the stalest connections while the table is full.
func (st *stream) makeRoom(t *Table) {
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

func (st *stream) unlinkLive(l *live) {
	if l.prev != nil {
		l.prev.next = l.next
	} else if st.head == l {
		st.head = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	} else if st.tail == l {
		st.tail = l.prev
	}
	l.prev, l.next = nil, nil
}

// pack makes the connection of entry ei dormant.
func (st *stream) pack(t *Table, ei int32) {
	e := t.ents.at(ei)
	l := t.liveOf(e)
	e.hint = st.hint(t, e, &l.c)
	if l.c.OnlyFirst() {
		st.setBlob(ei, e, st.cs.encodeSegment(l.c.ID, &l.first))
	} else {
		st.setBlob(ei, e, st.cs.encodeConn(&l.c))
	}
	t.letGo(e)
	st.unlinkLive(l)
	st.nLive--
	st.nPacked++
	st.recycle(l)
}

// wake unpacks the dormant connection of entry ei and makes it the most recently active.
func (st *stream) wake(t *Table, ei int32) *live {
	e := t.ents.at(ei)
	l := st.alloc()
	t.unpack(st.blob(ei, e), l)
	l.ent = ei
	st.dropBlob(ei, e)
	t.hold(e, l)
	st.nPacked--
	st.nLive++
	st.linkLive(l)
	return l
}

// hint is the earliest second a packed connection could be finished without another packet:
// the sweep leaves it alone until then. It need not be exact (over decides), only never late.
func (st *stream) hint(t *Table, e *entry, c *tracker.Conn) uint32 {
	h := int64(math.MaxUint32)
	if st.idle > 0 {
		h = int64(e.lastAny) + st.idle
	}
	if !c.Done() {
		when := int64(e.lastAny) + st.quiet
		if closing, ok := t.tr.ClosesBy(c, t.Now); !ok {
			when = math.MaxUint32
		} else if !closing.IsZero() {
			when = max(when, int64(secs(closing)))
		}
		h = min(h, when)
	}
	return uint32(min(max(h, st.boundary+1), math.MaxUint32))
}

// finishAll is Finish for a streaming table: every connection left, in ID order.
func (st *stream) finishAll(t *Table, now time.Time) {
	type ided struct {
		id uint64
		ei int32
	}
	order := make([]ided, 0, st.tracked)
	for ei := int32(0); ei < t.ents.n; ei++ {
		e := t.ents.at(ei)
		switch {
		case e.state == entFree:
		case e.live != 0:
			order = append(order, ided{t.liveOf(e).c.ID, ei})
		default:
			order = append(order, ided{st.cs.id(st.blob(ei, e)), ei})
		}
	}
	slices.SortFunc(order, func(a, b ided) int { return cmp.Compare(a.id, b.id) })
	t.draining = true
	defer func() {
		t.draining = false
		t.index.release()
		t.quiet.release()
		t.index, t.quiet = flowIndex{}, flowIndex{} // every entry they held is forgotten
		t.ents.reset()
		t.free = t.free[:0]
		st.blobs.reset() // and every blob released
	}()
	for _, o := range order {
		ei := o.ei
		e := t.ents.at(ei)
		l := t.wake(ei)
		if st.idle > 0 && int64(e.lastAny)+st.idle <= st.boundary {
			st.over(t, ei)
			continue
		}
		st.finish(t, ei, l, now, endInput)
	}
}

// The eviction lists (MaxFlows): every entry is in one, by whether it is half-open.

func listOf(e *entry) int {
	if e.half {
		return 0
	}
	return 1
}

func (st *stream) listPush(t *Table, ei int32) {
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

func (st *stream) listRemove(t *Table, ei int32) {
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
