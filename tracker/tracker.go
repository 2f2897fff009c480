package tracker

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/reassembly"
)

// Event is one endpoint's state change and the packet (or timer) that caused it.
type Event struct {
	Time     time.Time
	ConnID   uint64
	Side     Side
	Addr     netip.AddrPort
	Old, New State
	// The packet that caused it: input file index and packet number (0 for a timer), flags,
	// sequence and acknowledgment numbers.
	File   uint16
	Packet uint64
	Flags  capture.Flags
	Seq    uint32
	Ack    uint32
	Reason string
}

// Config sets up a Tracker.
type Config struct {
	Profile Profile
	// OnEvent, if set, receives every state change as it happens.
	OnEvent func(Event)
	// OnSegment, if set, receives every segment after the tracker applied it, with the
	// connection it belongs to and what it was in its direction's sequence space (duplicates
	// included, with kind Duplicate). For reports that draw packets (HTML ladder diagrams).
	OnSegment func(c *Conn, seg *capture.Segment, kind reassembly.Kind)
	// Zeek says which Zeek setup the Zeek view mimics (zero: Zeek with its base scripts).
	Zeek ZeekConfig
	// Stream, if set, makes the tracker hand out connections as they finish and forget them,
	// so that its memory follows the connections open at once, not the capture's length (see
	// StreamConfig). Conns is then empty.
	Stream *StreamConfig
}

// Stats counts what the tracker did.
type Stats struct {
	Segments    uint64
	Connections uint64
	Duplicates  uint64
	// Streaming runs only (StreamConfig).
	Evicted  uint64 // dropped from a full table (--max-flows) before they finished
	TimedOut uint64 // finished by the idle timeout
	Peak     uint64 // the most connections tracked at once
}

// Tracker is the flow table: the current instance of every 4-tuple, and every instance seen
// (or, streaming, every instance not finished yet).
type Tracker struct {
	cfg   Config
	index flowIndex
	ents  entries
	free  []int32 // entry numbers to reuse
	conns []*Conn // every instance in ID order (not kept when streaming)
	// Now is the time of the latest segment: the clock of the tracker.
	Now   time.Time
	stats Stats
	st    *stream // nil unless streaming
	// draining: every entry is being forgotten (the end of a streaming run), so the index is
	// dropped whole afterwards rather than entry by entry.
	draining bool
	details  detailCache // the flood details last written (diagnose)
}

// New returns an empty tracker.
func New(cfg Config) *Tracker {
	if cfg.Profile.Name == "" {
		cfg.Profile, _ = LookupProfile("linux")
	}
	t := &Tracker{cfg: cfg}
	if cfg.Stream != nil {
		t.st = newStream(*cfg.Stream)
	}
	return t
}

// Stats reports counts so far.
func (t *Tracker) Stats() Stats { return t.stats }

// Conns returns every connection instance in order of first packet.
func (t *Tracker) Conns() []*Conn { return t.conns }

// Add processes one segment.
func (t *Tracker) Add(seg *capture.Segment) { t.add(seg, FlowHash(seg.Src, seg.Dst), 0, seg.Time) }

// add processes seg, of flow hash h. A non-zero ord is the segment's number in the whole
// capture: a shard of a parallel run (parallel.go) names the connections it starts by it. now
// is the capture's clock (the latest time of any segment so far, whichever shard it went to).
func (t *Tracker) add(seg *capture.Segment, h uint64, ord uint64, now time.Time) {
	t.stats.Segments++
	t.advance(now)
	ei := t.lookup(h, seg.Src, seg.Dst)
	var c *Conn
	if ei >= 0 {
		c = t.wake(ei)
		if t.st != nil && t.st.over(t, ei) {
			ei, c = -1, nil // finished, reported and forgotten: this packet starts anew
		}
	}
	if c != nil && t.startsNewInstance(c, seg) {
		old, oldEi := c, ei
		c = t.newConn(seg, ord)
		c.Reuses = old.ID
		old.ReusedBy = c.ID
		t.supersede(old, seg)
		c.addDiag(Diagnosis{ID: DiagPortReused, Side: ClientSide, Detail: portReusedDetail(old.ID)})
		if t.st != nil && t.st.cfg.OnNew != nil {
			t.st.cfg.OnNew(c)
		}
		ei = t.attach(c, h, oldEi)
	} else if c == nil {
		if t.st != nil {
			t.st.makeRoom(t)
		}
		c = t.newConn(seg, ord)
		if t.st != nil && t.st.cfg.OnNew != nil {
			t.st.cfg.OnNew(c)
		}
		ei = t.attach(c, h, -1)
	}
	if e := t.ents.at(ei); secs(seg.Time) > e.lastAny {
		e.lastAny = secs(seg.Time)
	}

	before := [2]State{c.Client.State, c.Server.State}
	kind := c.apply(seg)
	if kind == reassembly.Duplicate {
		t.stats.Duplicates++
	} else {
		t.settle(c, seg.Time, seg, before)
	}
	if t.cfg.OnSegment != nil {
		t.cfg.OnSegment(c, seg, kind)
	}
	if t.st != nil {
		// Did this segment close it at both ends (not: was it closed already)?
		closing := !(ended(before[0]) && ended(before[1])) && ended(c.Client.State) && ended(c.Server.State)
		t.st.touched(t, ei, c, closing)
	}
}

// advance moves the tracker's clock to now, if that is later.
func (t *Tracker) advance(now time.Time) {
	if now.After(t.Now) {
		t.Now = now
		if t.st != nil {
			t.st.clock(t)
		}
	}
}

// lookup finds the entry of the current instance of seg's 4-tuple (hash h); -1 if none.
func (t *Tracker) lookup(h uint64, src, dst netip.AddrPort) int32 {
	x := &t.index
	if len(x.slots) == 0 {
		return -1
	}
	m := x.mask()
	for i := h & m; ; i = (i + 1) & m {
		s := x.slots[i]
		if s == 0 {
			return -1
		}
		if s>>32 != h>>32 {
			continue
		}
		ei := int32(uint32(s)) - 1
		e := t.ents.at(ei)
		if e.hashLo != uint32(h) {
			continue
		}
		var cl, sv netip.AddrPort
		if e.c != nil {
			cl, sv = e.c.Client.Addr, e.c.Server.Addr
		} else {
			cl, sv = t.st.key(e)
		}
		if cl == src && sv == dst || cl == dst && sv == src {
			return ei
		}
	}
}

// wake returns the connection of entry ei, unpacking it if it is dormant.
func (t *Tracker) wake(ei int32) *Conn {
	if c := t.ents.at(ei).c; c != nil {
		return c
	}
	return t.st.wake(t, ei)
}

// attach gives c an entry (hash h). If it replaces the instance of entry old on the same
// 4-tuple, it takes old's place in the index and old is detached: it waits for the end, or,
// streaming, is finished right away when nothing about it can change any more.
func (t *Tracker) attach(c *Conn, h uint64, old int32) int32 {
	var ei int32
	if n := len(t.free); n > 0 {
		ei = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		ei = t.ents.add()
	}
	*t.ents.at(ei) = entry{c: c, hashLo: uint32(h), state: entIndexed, lastAny: secs(c.FirstSeen), half: true}
	c.rt.ent = ei
	if old >= 0 {
		t.index.replace(h, old, ei)
		t.ents.at(old).state = entDetached
	} else {
		t.index.insert(h, ei, &t.ents)
	}
	if t.st != nil {
		t.st.attached(t, ei, old)
	}
	return ei
}

// forget frees entry ei, taking it out of the index if it is there.
func (t *Tracker) forget(ei int32) {
	e := t.ents.at(ei)
	if e.state == entIndexed && !t.draining {
		t.index.remove(t.hashOf(ei), ei, &t.ents)
	}
	*e = entry{}
	t.free = append(t.free, ei)
}

// hashOf is the flow hash of entry ei (which must be in the index), from its two halves.
func (t *Tracker) hashOf(ei int32) uint64 {
	lo := t.ents.at(ei).hashLo
	m := t.index.mask()
	for i := uint64(lo) & m; ; i = (i + 1) & m {
		if s := t.index.slots[i]; uint32(s) == uint32(ei+1) {
			return s>>32<<32 | uint64(lo)
		}
	}
}

// SideOf says which endpoint of c sent seg.
func (c *Conn) SideOf(seg *capture.Segment) Side { return c.sideOf(seg) }

// Finish evaluates every connection as of now (normally the last packet's time, or --at),
// running the timers that expired, and computes diagnoses.
func (t *Tracker) Finish(now time.Time) {
	if now.IsZero() {
		now = t.Now
	}
	if t.st != nil {
		t.st.finishAll(t, now)
		return
	}
	for _, c := range t.conns {
		before := [2]State{c.Client.State, c.Server.State}
		if !c.done {
			t.settle(c, now, nil, before)
		}
		c.diagnose(now, &t.cfg.Profile, &t.details)
	}
}

// settle re-derives both endpoints' states at time now and reports the changes.
func (t *Tracker) settle(c *Conn, now time.Time, seg *capture.Segment, before [2]State) {
	at := stampOf(now)
	lastPacket := at // after a packet, now is its time
	if now != c.LastSeen {
		lastPacket = stampOf(c.LastSeen)
	}
	for side := ClientSide; side <= ServerSide; side++ {
		ep := c.endpoint(side)
		s, when, viaTimer, deadline := ep.evaluateTimer(at, &t.cfg.Profile, lastPacket)
		why, unseen := "", false
		if c.doubt.active() || seg == nil {
			flightAt := stamp(0)
			if seg == nil {
				flightAt = at
				if now.Equal(t.Now) { // the end of the input, not --at
					flightAt = at.add(endGrace)
				}
			}
			s, when, viaTimer, deadline, why, unseen = c.reconsider(side, at, flightAt, &t.cfg.Profile, lastPacket, s, when, viaTimer, deadline)
		}
		if deadline != 0 || ep.Deadline != (time.Time{}) {
			// Most states run no timer: a zero Deadline stays as it is, without a conversion.
			ep.Deadline = deadline.time()
		}
		if c.mayInfer(side, viaTimer) {
			ep.Inferred, ep.Evidence = c.inference(side, s, viaTimer)
		} else {
			ep.Inferred, ep.Evidence = false, ""
		}
		if why != "" {
			ep.Inferred, ep.Evidence = true, why
		}
		if !ep.Inferred && s == FinWait2 && at.sub(when) >= t.cfg.Profile.FinWait2Orphan {
			ep.Inferred, ep.Evidence = true, fmt.Sprintf("FIN_WAIT_2 for over %s: gone by now if its application called close(), still there after shutdown() alone; the wire cannot tell which",
				t.cfg.Profile.FinWait2Orphan)
		}
		if s == before[side] {
			continue
		}
		since := when.time()
		ep.State, ep.Since = s, since
		if t.cfg.OnEvent == nil || unseen {
			continue
		}
		ev := Event{Time: now, ConnID: c.ID, Side: side, Addr: ep.Addr, Old: before[side], New: s}
		if viaTimer {
			ev.Time = since
			ev.Reason = timerReason(before[side])
		} else if seg != nil {
			ev.File, ev.Packet, ev.Flags, ev.Seq, ev.Ack = seg.File, seg.Packet, seg.Flags, seg.Seq, seg.Ack
			ev.Reason = c.reason(seg, side, before[side], s)
		}
		t.cfg.OnEvent(ev)
	}
}

func timerReason(old State) string {
	switch old {
	case TimeWait:
		return "TIME_WAIT timer expired (2·MSL)"
	case SynSent:
		return "connect() gave up: SYN retries exhausted"
	case SynReceived:
		return "SYN-ACK retries exhausted: half-open connection dropped"
	}
	return "timer expired"
}

// startsNewInstance: a SYN with a new initial sequence number on a known 4-tuple is a new
// connection; a SYN retransmission (same ISN) or the late SYN of a reordered handshake is not.
func (t *Tracker) startsNewInstance(c *Conn, seg *capture.Segment) bool {
	if c.doubt.reconnect && c.acceptsReconnect(seg) {
		return true
	}
	if !seg.Flags.Has(capture.SYN) || seg.Flags.Has(capture.ACK) || seg.Flags.Has(capture.RST) {
		return false
	}
	d := &c.Dir[c.sideOf(seg)]
	if d.SynSeen {
		// A reconnect to a server that still holds the connection is the old one's (reconnect.go).
		return reassembly.Seq(seg.Seq) != d.ISN && !c.reconnectSYN(seg)
	}
	if !d.Started {
		return false // simultaneous open: the peer's SYN, or a SYN after a captured SYN-ACK
	}
	// Only a SYN-ACK/ACK anchored this direction so far: the SYN belongs if it fits there.
	return reassembly.Seq(seg.Seq+1) != d.Next && reassembly.Seq(seg.Seq+1) != d.ISN+1
}

// supersede ends an instance whose 4-tuple a new SYN took over. TIME_WAIT and SYN_SENT sockets
// are gone by then: a stack reuses the port only once they are.
func (t *Tracker) supersede(c *Conn, seg *capture.Segment) {
	before := [2]State{c.Client.State, c.Server.State}
	t.settle(c, seg.Time, nil, before)
	for side := ClientSide; side <= ServerSide; side++ {
		ep := c.endpoint(side)
		if ep.State == TimeWait || ep.State == SynSent || ep.State == SynReceived {
			old := ep.State
			ep.State, ep.Since, ep.Deadline = Closed, seg.Time, time.Time{}
			ep.ev.replaced, ep.ev.tReset = true, stampOf(seg.Time)
			if t.cfg.OnEvent != nil {
				t.cfg.OnEvent(Event{Time: seg.Time, ConnID: c.ID, Side: side, Addr: ep.Addr, Old: old, New: Closed,
					File: seg.File, Packet: seg.Packet, Flags: seg.Flags, Seq: seg.Seq, Ack: seg.Ack,
					Reason: "a new SYN reuses the 4-tuple: the old socket is gone"})
			}
		}
	}
	c.done = true
	c.diagnose(seg.Time, &t.cfg.Profile, &t.details)
}

// newConn starts an instance, deciding which side is the client. Its ID is ord when given (a
// shard of a parallel run), else the count of every instance ever created (Release forgets
// finished ones from t.conns).
func (t *Tracker) newConn(seg *capture.Segment, ord uint64) *Conn {
	t.stats.Connections++
	id := t.stats.Connections
	if ord != 0 {
		id = ord
	}
	var c *Conn
	if t.st != nil {
		c = t.st.alloc()
		c.rt.first = *seg // while it has no other, its packed form is this segment (dormant.go)
	} else {
		c = &Conn{}
	}
	t.initConn(c, seg, id)
	if t.st == nil {
		t.conns = append(t.conns, c)
	}
	return c
}

// initConn sets up c, numbered id, for its first segment seg: which side is the client, and
// what that says about each side before seg is applied.
func (t *Tracker) initConn(c *Conn, seg *capture.Segment, id uint64) {
	c.ID, c.FirstSeen, c.LastSeen, c.Tunnel = id, seg.Time, seg.Time, seg.Tunnel
	c.Zeek.cfg = &t.cfg.Zeek
	if seg.Tunnel != capture.TunnelNone {
		c.TunnelSrc, c.TunnelDst = seg.TunnelSrc.String(), seg.TunnelDst.String()
	}
	f := seg.Flags
	client, server := seg.Src, seg.Dst
	switch {
	case f.Has(capture.SYN) && !f.Has(capture.ACK) && !f.Has(capture.RST):
		// The SYN's sender is the client.
	case f.Has(capture.SYN | capture.ACK):
		// The client's SYN was not captured: the SYN-ACK's sender is the server.
		client, server = seg.Dst, seg.Src
		c.RoleInferred = true
	default:
		c.Midstream, c.RoleInferred = true, true
		if likelyServer(seg.Src, seg.Dst) {
			client, server = seg.Dst, seg.Src
		}
	}
	c.Client.Addr, c.Server.Addr = client, server
	c.Client.ev.retries, c.Server.ev.retries = t.cfg.Profile.SynRetries, t.cfg.Profile.SynAckRetries
	c.Client.Since, c.Server.Since = seg.Time, seg.Time
	if c.Midstream {
		c.Client.ev.midstream, c.Server.ev.midstream = true, true
		c.Client.State, c.Server.State = Established, Established
		c.addDiag(Diagnosis{ID: DiagMidstream, Side: BothSides,
			Detail: "handshake not captured: states inferred from the first packets"})
	} else if c.RoleInferred {
		// A SYN-ACK first: the client must have sent the SYN the capture missed.
		c.Client.ev.sentSYN = true
		t0 := stampOf(seg.Time)
		c.Client.ev.firstSYN, c.Client.ev.lastSYN, c.Client.ev.nSYN = t0, t0, 1
		c.Dir[0].Started, c.Dir[0].SynSeen = true, true
		c.Dir[0].ISN = reassembly.Seq(seg.Ack - 1)
		c.Dir[0].Next = reassembly.Seq(seg.Ack)
	}
}

// wellKnownServerPorts are ports above 1023 that are nonetheless usually servers.
var wellKnownServerPorts = map[uint16]bool{
	1080: true, 1433: true, 1521: true, 1883: true, 2049: true, 2379: true, 3000: true, 3128: true,
	3306: true, 3389: true, 5000: true, 5432: true, 5672: true, 5900: true, 6379: true, 6443: true,
	6667: true, 8000: true, 8008: true, 8080: true, 8081: true, 8443: true, 8888: true, 9000: true,
	9042: true, 9090: true, 9092: true, 9200: true, 9300: true, 11211: true, 27017: true,
}

// likelyServer guesses, without a handshake, whether the segment's sender is the server: as
// Wireshark and Zeek do, by its port being well known and the other's not.
func likelyServer(src, dst netip.AddrPort) bool {
	sp, dp := src.Port(), dst.Port()
	sWell := sp < 1024 || wellKnownServerPorts[sp]
	dWell := dp < 1024 || wellKnownServerPorts[dp]
	switch {
	case sWell && !dWell:
		return true
	case dWell && !sWell:
		return false
	case sWell && dWell:
		return sp < dp
	}
	return false // neither: the first speaker is the client
}

func portReusedDetail(old uint64) string {
	return fmt.Sprintf("4-tuple reused: connection #%d had it before", old)
}

// renumber gives c its final ID, and those of the instances before and after it on its
// 4-tuple: a parallel run numbers connections once it knows their order (parallel.go).
func (c *Conn) renumber(id, reuses, reusedBy uint64) {
	c.ID, c.Reuses, c.ReusedBy = id, reuses, reusedBy
	for i := range c.Diagnoses {
		if c.Diagnoses[i].ID == DiagPortReused {
			c.Diagnoses[i].Detail = portReusedDetail(reuses)
		}
	}
}
