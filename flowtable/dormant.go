package flowtable

import (
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/pack"
	"github.com/tcpstate/tcpstate/tracker"
	"github.com/tcpstate/tcpstate/zeek"
)

// A dormant connection is one packed into a blob with internal/pack (kept in the blob arena,
// arena.go): every field of the Conn, its endpoints' evidence, both reassembly directions and
// its Zeek rows, so that a packet that wakes it up finds it exactly as it was. A live Conn
// takes about two and a half kilobytes with its Zeek row; packed, a SYN that was never
// answered takes about sixty bytes and a finished HTTPS exchange 300. A
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
// time its blobs count from (each table has its own; a blob is only ever unpacked by the
// table that packed it).
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

// startAt starts decoding blob, in place when it has room after it (arena.readable), else
// from a copy.
func (cs *codecState) startAt(blob []byte) { cs.k.Reset(false, blob) }

// done returns what was encoded, in the codec's scratch buffer: valid until the next
// encoding.
func (cs *codecState) done() []byte {
	cs.scratch = cs.k.Encoded()
	return cs.scratch
}

// packConn encodes all of c.
func (cs *codecState) packConn(c *tracker.Conn) string { return string(cs.encodeConn(c)) }

// encodeConn is packConn, in the scratch buffer (see done).
func (cs *codecState) encodeConn(c *tracker.Conn) []byte {
	if cs.epoch.IsZero() {
		cs.epoch = c.FirstSeen.Truncate(time.Hour)
	}
	cs.start(true, "")
	kind := uint64(blobFull)
	cs.head(&kind, &c.ID, &c.Client.Addr, &c.Server.Addr)
	c.Pack(&cs.k, &cs.strs)
	return cs.done()
}

// packSegment encodes a connection that has seen only seg (see Tracker.unpack).
func (cs *codecState) packSegment(id uint64, seg *capture.Segment) string {
	return string(cs.encodeSegment(id, seg))
}

// encodeSegment is packSegment, in the scratch buffer (see done).
func (cs *codecState) encodeSegment(id uint64, seg *capture.Segment) []byte {
	if cs.epoch.IsZero() {
		cs.epoch = seg.Time.Truncate(time.Hour)
	}
	cs.start(true, "")
	kind := uint64(blobSegment)
	cs.head(&kind, &id, &seg.Src, &seg.Dst)
	packSegment(&cs.k, seg)
	return cs.done()
}

// unpackConn decodes a blobFull into c (a reset Conn), for a table whose Zeek setup is zcfg.
func (cs *codecState) unpackConn(blob string, c *tracker.Conn, zcfg *zeek.Config) {
	cs.start(false, blob)
	var kind uint64
	cs.head(&kind, &c.ID, &c.Client.Addr, &c.Server.Addr)
	if kind != blobFull {
		panic("flowtable: unpackConn of a segment blob")
	}
	c.Pack(&cs.k, &cs.strs)
	c.Zeek.Bind(zcfg)
}

// key decodes only the addresses a blob starts with.
func (cs *codecState) key(blob []byte) (a, b netip.AddrPort) {
	cs.startAt(blob)
	var kind, id uint64
	cs.head(&kind, &id, &a, &b)
	return a, b
}

// id decodes only the connection ID of a blob (the first fields of head).
func (cs *codecState) id(blob []byte) uint64 {
	cs.startAt(blob)
	var kind, id uint64
	pack.Uint(&cs.k, &kind)
	pack.Uint(&cs.k, &id)
	return id
}

// unpack decodes the blob of a dormant connection into c (a reset Conn). A connection that
// had seen one segment was packed as that segment: it is rebuilt the way it was built, as
// newConn and Add did, without telling anyone (no event, no OnSegment, no count): a
// connection is a function of its segments, so it comes back exactly as it was.
func (t *Table) unpack(blob []byte, l *live) {
	c := &l.c
	cs := &t.st.cs
	cs.startAt(blob)
	var kind, id uint64
	var a, b netip.AddrPort
	cs.head(&kind, &id, &a, &b)
	if kind == blobFull {
		c.ID, c.Client.Addr, c.Server.Addr = id, a, b
		c.Pack(&cs.k, &cs.strs)
		c.Zeek.Bind(&t.cfg.Zeek)
		return
	}
	seg := &l.first
	*seg = capture.Segment{Src: a, Dst: b}
	packSegment(&cs.k, seg)
	t.tr.Start(c, seg, id)
	c.Zeek.Bind(&t.cfg.Zeek)
	t.tr.Apply(c, seg, true)
	c.Zeek.Observe(seg, zeek.Side(c.SideOf(seg)))
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
