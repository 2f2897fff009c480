package tracker

import (
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/pack"
	"github.com/tcpstate/tcpstate/reassembly"
)

// A dormant connection is one packed into a string with internal/pack: every field of the Conn,
// its endpoints' evidence, both reassembly directions and its Zeek rows, so that a packet that
// wakes it up finds it exactly as it was. A live Conn takes about two kilobytes with its Zeek row; packed, a SYN that
// was never answered takes about a hundred bytes and a finished HTTPS exchange 250. A
// streaming run (StreamConfig) keeps only the most recently active connections live and packs
// the rest, which is what bounds its memory by the connections it tracks, not their size.
//
// Every field must be visited here: TestPackRoundTrip fills each field of a Conn with a value
// and fails if one does not come back, so a new field cannot be forgotten silently. Fields
// that are usually zero sit in blocks behind one bit (pack.Codec.Block), whose condition names
// each of them and which, when left out, zeroes each of them: a field missing from a condition
// fails TestPackRoundTrip (it sets each field alone), one missing from the zeroing fails
// TestPackOverwrites (it unpacks over a Conn with every field set).

// codecState is what packing needs besides the codec: the strings it has interned and the
// time its blobs count from (each tracker has its own; a blob is only ever unpacked by the
// tracker that packed it).
type codecState struct {
	k       pack.Codec
	strs    pack.Interner
	epoch   time.Time
	scratch []byte
}

// Kinds of blob.
const (
	blobFull    = iota // every field of the Conn
	blobSegment        // the connection's only segment so far, to replay (Tracker.unpack)
)

// head packs (or unpacks) what every blob starts with: its kind, the connection's ID and
// addresses (for a single segment: its source and destination).
func (cs *codecState) head(kind *uint64, id *uint64, a, b *netip.AddrPort) {
	k := &cs.k
	pack.Uint(k, kind)
	pack.Uint(k, id)
	k.AddrPort(a)
	k.AddrPort(b)
	k.SetBase(cs.epoch)
}

func (cs *codecState) start(enc bool, blob string) {
	if enc {
		cs.k.Reset(true, cs.scratch)
	} else {
		cs.k.ResetString(blob)
	}
}

func (cs *codecState) done() string {
	cs.scratch = cs.k.Encoded()
	return string(cs.scratch)
}

// packConn encodes all of c.
func (cs *codecState) packConn(c *Conn) string {
	if cs.epoch.IsZero() {
		cs.epoch = c.FirstSeen.Truncate(time.Hour)
	}
	cs.start(true, "")
	kind := uint64(blobFull)
	cs.head(&kind, &c.ID, &c.Client.Addr, &c.Server.Addr)
	c.pack(&cs.k, &cs.strs)
	return cs.done()
}

// packSegment encodes a connection that has seen only seg (see Tracker.unpack).
func (cs *codecState) packSegment(id uint64, seg *capture.Segment) string {
	if cs.epoch.IsZero() {
		cs.epoch = seg.Time.Truncate(time.Hour)
	}
	cs.start(true, "")
	kind := uint64(blobSegment)
	cs.head(&kind, &id, &seg.Src, &seg.Dst)
	packSegment(&cs.k, seg)
	return cs.done()
}

// unpackConn decodes a blobFull into c (a reset Conn), for a tracker whose Zeek setup is zcfg.
func (cs *codecState) unpackConn(blob string, c *Conn, zcfg *ZeekConfig) {
	cs.start(false, blob)
	var kind uint64
	cs.head(&kind, &c.ID, &c.Client.Addr, &c.Server.Addr)
	if kind != blobFull {
		panic("tracker: unpackConn of a segment blob")
	}
	c.pack(&cs.k, &cs.strs)
	c.Zeek.cfg = zcfg
	for _, r := range c.Zeek.rows {
		r.cfg = zcfg
	}
}

// key decodes only the addresses a blob starts with.
func (cs *codecState) key(blob string) (a, b netip.AddrPort) {
	cs.start(false, blob)
	var kind, id uint64
	cs.head(&kind, &id, &a, &b)
	return a, b
}

// id decodes only the connection ID of a blob (the first fields of head).
func (cs *codecState) id(blob string) uint64 {
	cs.start(false, blob)
	var kind, id uint64
	pack.Uint(&cs.k, &kind)
	pack.Uint(&cs.k, &id)
	return id
}

// unpack decodes the blob of a dormant connection into c (a reset Conn). A connection that
// had seen one segment was packed as that segment: it is rebuilt the way it was built, as
// newConn and Add did, without telling anyone (no event, no OnSegment, no count): a
// connection is a function of its segments, so it comes back exactly as it was.
func (t *Tracker) unpack(blob string, c *Conn) {
	cs := &t.st.cs
	cs.start(false, blob)
	var kind, id uint64
	var a, b netip.AddrPort
	cs.head(&kind, &id, &a, &b)
	if kind == blobFull {
		c.ID, c.Client.Addr, c.Server.Addr = id, a, b
		c.pack(&cs.k, &cs.strs)
		c.Zeek.cfg = &t.cfg.Zeek
		for _, r := range c.Zeek.rows {
			r.cfg = &t.cfg.Zeek
		}
		return
	}
	seg := &c.rt.first
	*seg = capture.Segment{Src: a, Dst: b}
	packSegment(&cs.k, seg)
	t.initConn(c, seg, id)
	onEvent := t.cfg.OnEvent
	t.cfg.OnEvent = nil
	before := [2]State{c.Client.State, c.Server.State}
	if c.apply(seg) != reassembly.Duplicate {
		t.settle(c, seg.Time, seg, before)
	}
	t.cfg.OnEvent = onEvent
}

// packable reports whether c can be packed as its first segment: nothing but that segment
// ever touched it.
func (c *Conn) onlyFirst() bool {
	return c.Packets+c.Duplicates == 1 && c.Reuses == 0 && c.ReusedBy == 0 && !c.done &&
		c.AsOf.IsZero() && !c.Evicted && !c.TimedOut
}

// packSegment visits every field of a segment.
func packSegment(k *pack.Codec, s *capture.Segment) {
	k.Time(&s.Time)
	k.SetBase(s.Time)
	k.Seq(&s.Seq)
	k.Seq(&s.Ack)
	pack.Uint(k, &s.Flags)
	pack.Uint(k, &s.Window)
	pack.Uint(k, &s.PayloadLen)
	pack.Uint(k, &s.IPLen)
	o := &s.Opts
	pack.Uint(k, &o.Has)
	pack.Uint(k, &o.MSS)
	pack.Uint(k, &o.WScale)
	pack.Uint(k, &o.TSVal)
	pack.Uint(k, &o.TSEcr)
	pack.Uint(k, &o.Layout)
	pack.Uint(k, &s.TTL)
	pack.Uint(k, &s.IPID)
	pack.Uint(k, &s.FlowLabel)
	pack.Uint(k, &s.File)
	pack.Uint(k, &s.Packet)
	pack.Int(k, &s.Offset)
	k.Bools(&o.FastOpen, &s.Truncated, &s.BadChecksum, &s.DF)
	pack.Uint(k, &s.Tunnel)
	tunnel := netip.AddrPortFrom(s.TunnelSrc, 0)
	k.AddrPort(&tunnel)
	s.TunnelSrc = tunnel.Addr()
	tunnel = netip.AddrPortFrom(s.TunnelDst, 0)
	k.AddrPort(&tunnel)
	s.TunnelDst = tunnel.Addr()
	pack.Uint(k, &s.TunnelVNI)
}

// pack visits every field of the connection but those of the blob's head (see the package
// comment of internal/pack).
func (c *Conn) pack(k *pack.Codec, in *pack.Interner) {
	k.Time(&c.FirstSeen)
	k.SetBase(c.FirstSeen)

	c.Client.pack(k, in)
	c.Server.pack(k, in)
	k.Time(&c.LastSeen)
	pack.Uint(k, &c.Packets)
	pack.Uint(k, &c.Bytes)
	for i := range 2 {
		pack.Uint(k, &c.DirPackets[i])
		pack.Uint(k, &c.DirIPBytes[i])
	}
	// The latest sequence number of each direction's space, which the next one is written
	// relative to (reassembly.Direction.Pack).
	var seqs [2]uint32
	c.Dir[0].Pack(k, &seqs[0], &seqs[1])
	c.Dir[1].Pack(k, &seqs[1], &seqs[0])
	c.Zeek.pack(k, in, &seqs)
	k.Dict(&c.EndedBy, in)
	for i := range 2 {
		k.Dur(&c.rtt[i])
		pack.Stamp(k, &c.synTime[i])
	}
	pack.Stamp(k, &c.lastData)
	k.Bool(&c.done)
	k.Time(&c.AsOf)
	c.packRare(k, in)
	c.doubt.pack(k, in)
}

// packRare visits the fields of a connection that are usually zero, behind one bit.
func (c *Conn) packRare(k *pack.Codec, in *pack.Interner) {
	if !k.Block(k.Enc && (c.Duplicates != 0 || c.Midstream || c.RoleInferred || c.Reuses != 0 ||
		c.ReusedBy != 0 || len(c.Diagnoses) != 0 || c.Tunnel != 0 || c.TunnelSrc != "" ||
		c.TunnelDst != "" || c.finInferred != [2]bool{} || c.zwSince != [2]stamp{} ||
		c.zwLong != [2]time.Duration{} || len(c.rstNotes) != 0 || c.Evicted || c.TimedOut)) {
		if !k.Enc {
			c.Duplicates, c.Midstream, c.RoleInferred, c.Reuses, c.ReusedBy = 0, false, false, 0, 0
			c.Diagnoses = growTo(c.Diagnoses, 0)
			c.Tunnel, c.TunnelSrc, c.TunnelDst = 0, "", ""
			c.finInferred, c.zwSince, c.zwLong = [2]bool{}, [2]stamp{}, [2]time.Duration{}
			c.rstNotes = growTo(c.rstNotes, 0)
			c.Evicted, c.TimedOut = false, false
		}
		return
	}
	pack.Uint(k, &c.Duplicates)
	k.Bools(&c.Midstream, &c.RoleInferred, &c.finInferred[0], &c.finInferred[1], &c.Evicted, &c.TimedOut)
	pack.Uint(k, &c.Reuses)
	pack.Uint(k, &c.ReusedBy)
	n := k.Len(len(c.Diagnoses))
	if !k.Enc {
		c.Diagnoses = growTo(c.Diagnoses, n)
	}
	for i := range n {
		d := &c.Diagnoses[i]
		k.Dict(&d.ID, in)
		pack.Uint(k, &d.Side)
		k.Dict(&d.Detail, in)
	}
	pack.Uint(k, &c.Tunnel)
	k.Dict(&c.TunnelSrc, in)
	k.Dict(&c.TunnelDst, in)
	for i := range 2 {
		pack.Stamp(k, &c.zwSince[i])
		k.Dur(&c.zwLong[i])
	}
	n = k.Len(len(c.rstNotes))
	if !k.Enc {
		c.rstNotes = growTo(c.rstNotes, n)
	}
	for i := range n {
		r := &c.rstNotes[i]
		pack.Uint(k, &r.from)
		k.Bools(&r.accepted, &r.wantChallenge)
		k.Dict(&r.verdict, in)
		pack.Stamp(k, &r.t)
		pack.Uint(k, &r.packet)
		k.Seq((*uint32)(&r.rcvNxt))
		pack.Uint(k, &r.challenge)
	}
}

// growTo returns s with length n, reusing its array when it is big enough; decoding a slice
// that was nil gives nil.
func growTo[T any](s []T, n int) []T {
	if n == 0 {
		if s == nil {
			return nil
		}
		return s[:0]
	}
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}

func (ep *Endpoint) pack(k *pack.Codec, in *pack.Interner) {
	pack.Uint(k, &ep.State)
	k.Time(&ep.Since)
	k.Bool(&ep.Inferred)
	k.Dict(&ep.Evidence, in)
	k.Time(&ep.Deadline)
	e := &ep.ev
	pack.Int(k, &e.retries)
	// The evidence in three blocks, each usually all set or all zero: the handshake, the
	// close, and trouble.
	if k.Block(k.Enc && (e.sentSYN || e.sentSYNACK || e.gotSYN || e.synAcked ||
		e.firstSYN != 0 || e.lastSYN != 0 || e.nSYN != 0 || e.tSynAckLast != 0 ||
		e.tSynAcked != 0)) {
		k.Bools(&e.sentSYN, &e.sentSYNACK, &e.gotSYN, &e.synAcked)
		pack.Stamp(k, &e.firstSYN)
		pack.Stamp(k, &e.lastSYN)
		pack.Int(k, &e.nSYN)
		pack.Stamp(k, &e.tSynAckLast)
		pack.Stamp(k, &e.tSynAcked)
	} else if !k.Enc {
		e.sentSYN, e.sentSYNACK, e.gotSYN, e.synAcked = false, false, false, false
		e.firstSYN, e.lastSYN, e.nSYN, e.tSynAckLast, e.tSynAcked = 0, 0, 0, 0, 0
	}
	if k.Block(k.Enc && (e.sentFIN || e.finPassive || e.gotFIN || e.finAcked ||
		e.tFinAckLast != 0 || e.tFinAcked != 0 || e.tGotFIN != 0 ||
		e.tSentFIN != 0 || e.lastFIN != 0)) {
		k.Bools(&e.sentFIN, &e.finPassive, &e.gotFIN, &e.finAcked)
		pack.Stamp(k, &e.tFinAckLast)
		pack.Stamp(k, &e.tFinAcked)
		pack.Stamp(k, &e.tGotFIN)
		pack.Stamp(k, &e.tSentFIN)
		pack.Stamp(k, &e.lastFIN)
	} else if !k.Enc {
		e.sentFIN, e.finPassive, e.gotFIN, e.finAcked = false, false, false, false
		e.tFinAckLast, e.tFinAcked, e.tGotFIN, e.tSentFIN, e.lastFIN = 0, 0, 0, 0, 0
	}
	if k.Block(k.Enc && (e.sentRST || e.gotRST || e.synAckLost != 0 || e.finAckLost != 0 ||
		e.synAckPending != 0 || e.finAckPending != 0 || e.midstream || e.replaced ||
		e.prevFINGap != 0 || e.tReset != 0 || e.prevSYNGap != 0)) {
		k.Bools(&e.sentRST, &e.gotRST, &e.midstream, &e.replaced)
		pack.Int(k, &e.synAckLost)
		pack.Int(k, &e.finAckLost)
		pack.Stamp(k, &e.synAckPending)
		pack.Stamp(k, &e.finAckPending)
		k.Dur(&e.prevFINGap)
		pack.Stamp(k, &e.tReset)
		k.Dur(&e.prevSYNGap)
	} else if !k.Enc {
		e.sentRST, e.gotRST, e.synAckLost, e.finAckLost = false, false, 0, 0
		e.synAckPending, e.finAckPending, e.midstream, e.replaced = 0, 0, false, false
		e.prevFINGap, e.tReset, e.prevSYNGap = 0, 0, 0
	}
}

// pack visits the Zeek view's fields; seqs are the latest sequence numbers of the two sides'
// spaces (see Conn.pack).
func (z *ZeekView) pack(k *pack.Codec, in *pack.Interner, seqs *[2]uint32) {
	k.Dict(&z.History, in)
	pack.Uint(k, &z.RowsDropped)
	n := k.Len(len(z.rows))
	if !k.Enc {
		z.rows = growTo(z.rows, n)
	}
	for i := range n {
		if !k.Enc && z.rows[i] == nil {
			z.rows[i] = &zrow{}
		}
		z.rows[i].pack(k, seqs)
	}
}

func (r *zrow) pack(k *pack.Codec, seqs *[2]uint32) {
	pack.Uint(k, &r.orig)
	for i := range 2 {
		pack.Uint(k, &r.ports[i])
		r.ep[i].pack(k, &seqs[i]) // ep is by side, as seqs
		pack.Uint(k, &r.seen[i])
		pack.Uint(k, &r.pkts[i])
		pack.Uint(k, &r.ipBytes[i])
	}
	k.Bytes(&r.history)
	pack.Nanos(k, &r.start)
	pack.Nanos(k, &r.lastTime)
	pack.Uint(k, &r.firstPacketSeen)
	k.Bool(&r.active)
	k.Dur(&r.inactivity)
	pack.Nanos(k, &r.deleteAt)
	// Usually zero.
	if k.Block(k.Enc && (r.missed != 0 || r.isPartial || r.closeDeferred || r.deferredGen ||
		r.attemptAt != 0 || len(r.expireAt) != 0 || r.established)) {
		pack.Uint(k, &r.missed)
		k.Bools(&r.isPartial, &r.closeDeferred, &r.deferredGen, &r.established)
		pack.Nanos(k, &r.attemptAt)
		n := k.Len(len(r.expireAt))
		if !k.Enc {
			r.expireAt = growTo(r.expireAt, n)
		}
		for i := range n {
			pack.Nanos(k, &r.expireAt[i])
		}
	} else if !k.Enc {
		r.missed, r.isPartial, r.closeDeferred, r.deferredGen = 0, false, false, false
		r.attemptAt, r.expireAt, r.established = 0, growTo(r.expireAt, 0), false
	}
}

// pristine reports whether e is as newZrow leaves it: every field is listed, so that a field
// added to zendpoint must be added here too (TestPackRoundTrip sets each one alone).
func (e *zendpoint) pristine() bool {
	return e.state == 0 && e.prev == 0 && e.startSeq == 0 && e.lastSeq == 0 && e.ackSeq == 0 &&
		e.seqWraps == 0 && e.ackWraps == 0 && e.lastSYN == 0 && e.lastFIN == 0 && e.lastRST == 0 &&
		e.finCnt == 0 && e.rstCnt == 0 && e.finSeq == 0 && !e.didClose && e.chk == (scaled{}) &&
		e.rxmt == (scaled{}) && e.win0 == (scaled{}) && e.gap == (scaled{}) &&
		e.re.lastReassem == 1 && e.re.trim == 1 && e.re.pending == nil && !e.re.skip && !e.re.didEOF
}

// pack visits the endpoint's fields; own is the latest sequence number of its side's space (see
// reassembly.Direction.Pack): its sequence numbers, and the acknowledgments it got, are in it.
func (e *zendpoint) pack(k *pack.Codec, own *uint32) {
	if !k.Block(k.Enc && !e.pristine()) {
		if !k.Enc {
			*e = zendpoint{re: zreasm{lastReassem: 1, trim: 1}}
		}
		return
	}
	pack.Uint(k, &e.state)
	pack.Uint(k, &e.prev)
	// startSeq holds a sequence number (in an int64): its low 32 bits are one, the rest zero.
	lo, hi := uint32(e.startSeq), e.startSeq>>32
	k.SeqFrom(&lo, own)
	k.SeqFrom(&e.lastSeq, own)
	k.SeqFrom(&e.ackSeq, own)
	pack.Uint(k, &e.lastSYN)
	pack.Uint(k, &e.lastFIN)
	pack.Int(k, &e.finCnt)
	pack.Uint(k, &e.finSeq)
	re := &e.re
	k.Bools(&e.didClose, &re.didEOF)
	pack.Default(k, &re.lastReassem, 1)
	pack.Default(k, &re.trim, 1)
	// Usually zero.
	if k.Block(k.Enc && (hi != 0 || e.seqWraps != 0 || e.ackWraps != 0 || e.lastRST != 0 ||
		e.rstCnt != 0 || e.chk != scaled{} || e.rxmt != scaled{} || e.win0 != scaled{} ||
		e.gap != scaled{} || len(re.pending) != 0 || re.skip)) {
		pack.Int(k, &hi)
		pack.Uint(k, &e.seqWraps)
		pack.Uint(k, &e.ackWraps)
		pack.Uint(k, &e.lastRST)
		pack.Int(k, &e.rstCnt)
		for _, s := range [4]*scaled{&e.chk, &e.rxmt, &e.win0, &e.gap} {
			pack.Uint(k, &s.cnt)
			pack.Uint(k, &s.thresh)
		}
		n := k.Len(len(re.pending))
		if !k.Enc {
			re.pending = growTo(re.pending, n)
		}
		for i := range n {
			pack.Uint(k, &re.pending[i].from)
			pack.Uint(k, &re.pending[i].to)
		}
		k.Bool(&re.skip)
	} else if !k.Enc {
		hi, e.seqWraps, e.ackWraps, e.lastRST, e.rstCnt = 0, 0, 0, 0, 0
		e.chk, e.rxmt, e.win0, e.gap = scaled{}, scaled{}, scaled{}, scaled{}
		re.pending, re.skip = growTo(re.pending, 0), false
	}
	if !k.Enc {
		e.startSeq = hi<<32 | int64(lo)
	}
}
