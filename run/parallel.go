package run

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/tracker"
)

// A parallel run: one goroutine reads and decodes the capture and deals each segment to one of
// K tracker shards by its flow hash (both directions of a 4-tuple, and every instance of it, go
// to the same shard); each shard is a streaming Tracker in a goroutine of its own; the caller's
// goroutine merges what they finish and hands it out in ID order.
//
// IDs count connections in order of first packet across the whole capture, but whether a
// segment starts a connection is a shard's decision (a new SYN on a known 4-tuple, a packet
// after its connection finished). So the reader numbers every segment it reads (its ordinal);
// a shard names the connections it starts by the ordinal of their first segment and tells the
// merger; the merger numbers them 1, 2, 3... in ordinal order. It may number ordinal o once no
// shard can still start a connection before o: the reader marks each batch with the latest
// ordinal read when it was sent, and sends every shard a batch at least every readerTick
// segments. The merger then renumbers each finished connection (ID, Reuses, ReusedBy, the
// port-reused detail) and hands it on in ID order. The result is exactly what one tracker
// gives: nothing a shard decides depends on another shard's connections, and the clock every
// shard sees is the capture's (the reader passes it along with each segment).
//
// At the end, the shards finish what they still hold in ID order, in small chunks that the
// merger asks for from the shard that holds the next ID, so that nothing piles up.

const (
	// A batch is sent once full (or at the tick). It holds firstBatch segments, or
	// batchSize once it has filled with nothing but consecutive segments: when one shard
	// gets everything, as with one bulk transfer, that shard, faster than the reader, waits
	// for each batch, and waking it costs the reader a futex call or more each time
	// (1024 → 4096: -5% wall time on 2 cores). Otherwise larger batches only cost memory
	// (and collections).
	batchSize  = 4096
	firstBatch = 1024
	readerTick = 4096 // every shard hears of the reader's progress this often
	// At the end, a shard hands what it finishes to the merger this many at a time. Two
	// shards and the merger share two cores then, and each time one of them blocks on a
	// channel (a shard whose chunks are all waiting, the merger waiting for a shard's next
	// chunk) a core may stay idle until another goroutine is woken; chunks of 64 (some 40 µs
	// of the merger's work for a flood's SYN_SENT connections) did that thousands of times a
	// second and left a fifth of the two cores idle at a flood's end (128: -8% wall time;
	// 256 gains little more on a flood and costs a capture whose connections are larger, as
	// A's, ~5%: more of them in flight, out of the caches). The first chunks are smaller
	// (finalFirst, doubling), so that the merger need not wait for a whole chunk of
	// connections that take long to finish before it starts.
	finalChunk = 128
	finalFirst = 16
	// The merger gives connections back to their shard for reuse this many at a time: one
	// channel operation per connection, each taking the channel's lock on both cores, cost a
	// flood's run ~5% of its CPU time.
	backBatch = 64
)

// item is one segment for a shard: its ordinal and the capture's clock as it was read.
type item struct {
	seg  capture.Segment
	hash uint64
	ord  uint64
	now  time.Time
}

// batch is what the reader sends a shard: segments, and how far it has read.
type batch struct {
	items []item
	upTo  uint64    // the latest ordinal read when the batch was sent
	clock time.Time // the capture's clock then
	end   bool      // the input is done: finish at now
	now   time.Time // with end: the instant to finish at
}

// created is a connection a shard started: its ordinal, and that of the instance it replaced.
type created struct{ ord, reuses uint64 }

// result is what a shard sends the merger after each batch.
type result struct {
	shard    int
	created  []created
	finished []*tracker.Conn
	upTo     uint64
	last     bool            // the input is done: what the shard finishes now comes on its final channel
	stats    flowtable.Stats // with last
}

func runParallel(src capture.Source, rc Config, out func(*tracker.Conn)) Stats {
	k := min(rc.Workers, 64) // (a shard number takes 8 bits in the numbering)
	// (Never with --max-flows: Run keeps that to one goroutine.)
	in := make([]chan *batch, k)
	free := make([]chan *batch, k)
	back := make([]chan []*tracker.Conn, k)
	final := make([]chan []*tracker.Conn, k)
	results := make(chan *result, 4*k)
	ends := make(chan time.Time, 1)
	for s := range k {
		in[s] = make(chan *batch, 4)
		free[s] = make(chan *batch, 6)
		for range 6 {
			free[s] <- &batch{items: make([]item, 0, firstBatch)}
		}
		// Room for every connection a shard may have out at the end (final's chunks, the one
		// it fills, the one the merger takes from) and then some: what does not fit is
		// dropped, and the shard allocates new ones.
		back[s] = make(chan []*tracker.Conn, 8*finalChunk/backBatch)
		// A few chunks of slack: the merger takes from the shard that holds the next ID, and
		// a shard that may run ahead meanwhile does not leave its core idle (a flood's end:
		// -15% wall time on 2 cores).
		final[s] = make(chan []*tracker.Conn, 4)
		go runShard(s, rc, in[s], free[s], back[s], results, final[s])
	}
	go readParallel(src, &rc, k, in, free, ends)

	m := &merger{k: k, fifo: make([][]created, k), upTo: make([]uint64, k),
		waiting: map[uint64]waiting{}, back: back, ret: make([][]*tracker.Conn, k)}
	m.reorder = flowtable.NewReorder(&rc.Config, out)
	var st Stats
	gotEnd := false
	end := func(now time.Time) {
		st.Now, gotEnd = now, true
		if rc.AtEnd != nil {
			rc.AtEnd(now)
		}
	}
	for streaming := k; streaming > 0; {
		select {
		case now := <-ends:
			end(now)
		case r := <-results:
			m.fifo[r.shard] = append(m.fifo[r.shard], r.created...)
			m.upTo[r.shard] = r.upTo
			if r.last {
				m.upTo[r.shard] = ^uint64(0)
				streaming--
				st.Segments += r.stats.Segments
				st.Connections += r.stats.Connections
				st.Duplicates += r.stats.Duplicates
				st.Evicted += r.stats.Evicted
				st.TimedOut += r.stats.TimedOut
				st.Peak += r.stats.Peak
			}
			m.number()
			m.take(r.shard, r.finished)
		}
	}
	if !gotEnd {
		end(<-ends)
	}
	// The end: each shard finishes what it holds in ID order; merge those streams by taking,
	// each time, the next connection from the shard that holds the next ID.
	queues := make([][]*tracker.Conn, k)
	for open := k; open > 0; {
		s := m.owner(m.reorder.Next())
		if s < 0 {
			// Every numbered connection is out: what is left is only the channels closing.
			for s = range k {
				if final[s] != nil {
					break
				}
			}
		}
		if len(queues[s]) == 0 {
			chunk, ok := <-final[s]
			if !ok {
				final[s] = nil
				open--
				continue
			}
			queues[s] = chunk
		}
		c := queues[s][0]
		queues[s] = queues[s][1:]
		if !m.try(c.ID, waiting{c, s}) {
			m.waiting[c.ID] = waiting{c, s}
		}
	}
	m.take(0, nil)
	if len(m.waiting) > 0 || len(m.nums.list) > m.nums.dead {
		panic(fmt.Sprintf("tracker: a parallel run ended with %d connection(s) not handed out", len(m.waiting)))
	}
	_, st.Held = m.reorder.Held()
	return st
}

// readParallel reads src, numbers the segments and deals them out to the shards.
func readParallel(src capture.Source, rc *Config, k int, in []chan *batch, free []chan *batch, ends chan<- time.Time) {
	f := newFrontEnd(rc)
	cur := make([]*batch, k)
	for s := range cur {
		cur[s] = <-free[s]
	}
	var ord, n uint64
	send := func(s int, now time.Time, end bool) {
		b := cur[s]
		b.upTo, b.clock, b.now, b.end = ord, f.clock, now, end
		in[s] <- b
		if !end {
			cur[s] = <-free[s]
			cur[s].items = cur[s].items[:0]
		}
	}
	// Segments are decoded where they go, when they can be: the source reads one ahead, and
	// is lent for it the place after the end of the batch the last segment went to. The
	// segment it hands out now goes to the end of that batch too, most likely (in place, if
	// it was lent its place the same way), and the next one after it. Where the guess is
	// wrong, a segment is copied to its place. The slot lent last is the source's until the
	// next call: it may be past the end of a batch that is sent meanwhile, which is safe, as
	// the shard reads only the segments sent, and the batch comes back to the reader only
	// after all those sent before it (free is FIFO), long after the next call.
	segs := lending(src)
	var spare [2]capture.Segment
	lent, last := &spare[0], 0 // the slot lent last; the shard of the segment placed last
	for {
		var slot *capture.Segment
		if b := cur[last]; len(b.items)+1 < cap(b.items) {
			slot = &b.items[:cap(b.items)][len(b.items)+1].seg
		}
		if slot == nil || slot == lent { // (lent is still there if the last one was skipped)
			slot = &spare[0]
			if slot == lent {
				slot = &spare[1]
			}
		}
		seg := segs.NextIn(slot)
		lent = slot
		if seg == nil {
			break
		}
		if n++; n%progressEvery == 0 && rc.Progress != nil {
			rc.Progress(src.Stats())
		}
		adm := f.admit(seg)
		if adm == admitStop {
			break
		}
		ord++
		if adm == admitTrack {
			s := 0
			if k > 1 {
				s = shardOf(f.hash, k)
			}
			last = s
			b := cur[s]
			// Filled in place: append(b.items, item{...}) builds the item on the stack
			// first and copies it twice (a quarter of a kilobyte each time). There is
			// room: a full batch is sent or grown at once (below).
			i := len(b.items)
			b.items = b.items[:i+1]
			it := &b.items[i]
			if seg != &it.seg {
				it.seg = *seg
			}
			it.hash, it.ord, it.now = f.hash, ord, f.clock
			if n := len(b.items); n >= batchSize {
				send(s, f.clock, false)
			} else if n == cap(b.items) {
				if b.items[0].ord == ord+1-uint64(n) {
					// Nothing but this shard's: grow (neither the segment the source
					// holds nor the slot lent next can be in a full batch).
					b.items = slices.Grow(b.items, batchSize-n)
				} else {
					send(s, f.clock, false)
				}
			}
		}
		if ord%readerTick == 0 {
			for s := range k {
				send(s, f.clock, false)
			}
		}
	}
	now := f.end()
	ends <- now
	for s := range k {
		send(s, now, true)
		close(in[s])
	}
}

// shardOf picks a tracker shard for a flow hash: from bits that neither the flow index (the
// bottom ones) nor --shard (the top 32) use alone.
func shardOf(h uint64, k int) int {
	return int((h * 0x9e3779b97f4a7c15 >> 32) * uint64(k) >> 32)
}

func runShard(s int, rc Config, in <-chan *batch, free chan<- *batch, back chan []*tracker.Conn,
	results chan<- *result, final chan<- []*tracker.Conn) {
	cfg := rc.Config
	sc := rc.Stream
	if sc.MaxLive == 0 {
		sc.MaxLive = max(flowtable.DefaultMaxLive/rc.Workers, 256) // the live connections of all shards
	}
	res := &result{shard: s}
	var chunk []*tracker.Conn
	chunkLen := finalFirst
	ending := false
	sc.Handoff = true
	sc.OnNew = func(c *tracker.Conn) { res.created = append(res.created, created{c.ID, c.Reuses}) }
	sc.OnFinished = func(c *tracker.Conn) {
		if !ending {
			res.finished = append(res.finished, c)
			return
		}
		if chunk = append(chunk, c); len(chunk) == chunkLen {
			final <- chunk
			chunk = nil
			chunkLen = min(2*chunkLen, finalChunk)
		}
	}
	sc.Back = back
	cfg.Stream = &sc
	tr := flowtable.New(cfg)
	for b := range in {
		for i := range b.items {
			it := &b.items[i]
			tr.AddAt(&it.seg, it.hash, it.ord, it.now)
		}
		res.upTo = b.upTo
		tr.Advance(b.clock)
		if b.end {
			res.last, res.stats = true, tr.Stats()
			results <- res
			ending = true
			tr.Finish(b.now)
			if len(chunk) > 0 {
				final <- chunk
			}
			close(final)
			free <- b
			continue
		}
		b.items = b.items[:0]
		free <- b
		results <- res
		res = &result{shard: s}
	}
}

// waiting is a finished connection the merger holds until it can be numbered.
type waiting struct {
	c     *tracker.Conn
	shard int
}

// merger numbers the connections of a parallel run and hands them out in order.
type merger struct {
	k       int
	fifo    [][]created // per shard, connections started and not numbered yet, by ordinal
	upTo    []uint64    // per shard, the ordinal up to which it has read everything
	nums    numbering
	waiting map[uint64]waiting // finished, by ordinal, until they (and their successor) have IDs
	reorder *flowtable.Reorder
	back    []chan []*tracker.Conn
	ret     [][]*tracker.Conn // per shard, connections handed out, to give back (backBatch at a time)
}

// number gives IDs to the connections that can have theirs: in ordinal order, up to the
// point every shard has read.
func (m *merger) number() {
	for {
		best := -1
		for s := range m.k {
			if len(m.fifo[s]) > 0 && (best < 0 || m.fifo[s][0].ord < m.fifo[best][0].ord) {
				best = s
			}
		}
		if best < 0 {
			return
		}
		cr := m.fifo[best][0]
		for s := range m.k {
			if s != best && m.upTo[s] < cr.ord {
				return // shard s may still start a connection before this one
			}
		}
		refs := 1 // the connection itself
		if cr.reuses != 0 {
			refs++ // its predecessor's ReusedBy
			if p := m.nums.byOrd(cr.reuses); p != nil {
				p.addRef(1) // its own Reuses
			}
		}
		m.nums.add(cr.ord, best, refs)
		m.fifo[best] = m.fifo[best][1:]
	}
}

// take receives finished connections (named by their ordinals) from shard s and hands on
// those it can.
func (m *merger) take(s int, cs []*tracker.Conn) {
	for _, c := range cs {
		if !m.try(c.ID, waiting{c, s}) {
			m.waiting[c.ID] = waiting{c, s}
		}
	}
	for ord, w := range m.waiting {
		if m.try(ord, w) {
			delete(m.waiting, ord)
		}
	}
	m.nums.compact()
}

// try renumbers the finished connection of ordinal ord and hands it on, if every ID it needs
// is known; it reports whether it did.
func (m *merger) try(ord uint64, w waiting) bool {
	c := w.c
	self := m.nums.byOrd(ord)
	if self == nil {
		return false
	}
	var next *numbered
	if c.ReusedBy != 0 {
		if next = m.nums.byOrd(c.ReusedBy); next == nil {
			return false // its successor has no ID yet
		}
	}
	var prev *numbered
	if c.Reuses != 0 { // (ordinals start at 1)
		prev = m.nums.byOrd(c.Reuses)
	}
	var reuses, reusedBy uint64
	if prev != nil {
		reuses = prev.id()
	}
	if next != nil {
		reusedBy = next.id()
	}
	id := self.id()
	for _, n := range [3]*numbered{self, prev, next} {
		if n != nil {
			m.nums.release(n)
		}
	}
	c.Renumber(id, reuses, reusedBy)
	m.reorder.Put(c)
	r := append(m.ret[w.shard], c)
	if len(r) == backBatch {
		select {
		case m.back[w.shard] <- r:
			r = make([]*tracker.Conn, 0, backBatch)
		default: // the shard has enough: let these go
			clear(r)
			r = r[:0]
		}
	}
	m.ret[w.shard] = r
	return true
}

// owner is the shard holding connection id (-1: none known).
func (m *merger) owner(id uint64) int {
	if n := m.nums.byID(id); n != nil {
		return n.shard()
	}
	return -1
}

// numbering holds the IDs given and still needed, in ordinal order (which is also ID order):
// 16 bytes each, for every connection a parallel run tracks.
type numbering struct {
	list []numbered
	dead int
	next uint64
	hint int // where the last lookup found its entry: the next one is most often there or just after
}

// numbered is an ordinal and its ID, with who still needs the ID (the connection and its
// neighbours on the 4-tuple: up to 3) and the shard that holds it, in the ID's top 16 bits.
type numbered struct {
	ord  uint64
	meta uint64 // refs << 56 | shard << 48 | id
}

const idBits = 48

func (e *numbered) id() uint64   { return e.meta & (1<<idBits - 1) }
func (e *numbered) refs() int    { return int(e.meta >> 56) }
func (e *numbered) shard() int   { return int(e.meta >> idBits & 0xff) }
func (e *numbered) addRef(d int) { e.meta = uint64(e.refs()+d)<<56 | e.meta&(1<<56-1) }

func (n *numbering) add(ord uint64, shard int, refs int) {
	n.next++
	n.list = append(n.list, numbered{ord: ord, meta: uint64(refs)<<56 | uint64(shard)<<idBits | n.next})
}

// byOrd and byID look at the entry the last lookup found and the one after it before they
// search the list: at the end of a run, the merger looks up each ID (owner), then the same
// entry by ordinal (try), then the next ID, and so on; a binary search of a flood's million
// entries costs a cache miss or more per step.

func (n *numbering) byOrd(ord uint64) *numbered {
	i := n.hint
	if !(i < len(n.list) && n.list[i].ord == ord) {
		if i++; !(i < len(n.list) && n.list[i].ord == ord) {
			i = sort.Search(len(n.list), func(i int) bool { return n.list[i].ord >= ord })
		}
	}
	if i < len(n.list) && n.list[i].ord == ord && n.list[i].refs() > 0 {
		n.hint = i
		return &n.list[i]
	}
	return nil
}

func (n *numbering) byID(id uint64) *numbered {
	i := n.hint
	if !(i < len(n.list) && n.list[i].id() == id) {
		if i++; !(i < len(n.list) && n.list[i].id() == id) {
			i = sort.Search(len(n.list), func(i int) bool { return n.list[i].id() >= id })
		}
	}
	if i < len(n.list) && n.list[i].id() == id && n.list[i].refs() > 0 {
		n.hint = i
		return &n.list[i]
	}
	return nil
}

func (n *numbering) release(e *numbered) {
	if e.addRef(-1); e.refs() == 0 {
		n.dead++
	}
}

// compact drops the IDs nobody needs any more, once they are half the table.
func (n *numbering) compact() {
	if n.dead < 1024 || n.dead*2 < len(n.list) {
		return
	}
	kept := n.list[:0]
	for _, e := range n.list {
		if e.refs() > 0 {
			kept = append(kept, e)
		}
	}
	clear(n.list[len(kept):])
	n.list, n.dead = kept, 0
}
