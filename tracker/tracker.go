package tracker

import (
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/osfp"
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
	Seq    capture.Seq
	Ack    capture.Seq
	// Reason is why it changed, as data (report.AppendReason writes it); FinSeq is the FIN
	// the packet's ACK covers (ReasonFinAcked).
	Reason Reason
	FinSeq capture.Seq
}

// Config sets up a Tracker.
type Config struct {
	Profile Profile
	// OS, if active, gives each endpoint its own OS's profile (os.go): set by the user per
	// address or side, or inferred from its packets; Profile then serves endpoints of unknown
	// OS. The zero value: Profile for every endpoint.
	OS osfp.Policy
	// OnEvent, if set, receives every state change as it happens.
	OnEvent func(Event)
}

// Tracker is the TCP engine: it applies segments to connections (their endpoints' evidence,
// the RST rules, the reassembly of each direction), derives each endpoint's state, runs the
// timers and diagnoses. It keeps no connections: the flow table (package flowtable) finds the
// connection a segment belongs to, decides when a new instance begins, and asks the tracker to
// apply it. It reads no clock: every instant comes from a segment or from the caller.
type Tracker struct {
	cfg Config
	// clock is the capture's clock as the caller advanced it (Advance): the latest segment
	// time, which tells the end of the input from an earlier instant asked for (--at).
	clock time.Time
	// osProfiles: the profile of each OS family, when Config.OS is active (os.go).
	osProfiles []Profile
}

// New returns a tracker (the Linux profile when cfg names none).
func New(cfg Config) *Tracker {
	if cfg.Profile.Name == "" {
		cfg.Profile, _ = LookupProfile("linux")
	}
	t := &Tracker{cfg: cfg}
	t.initOS()
	return t
}

// Advance moves the tracker's clock to now, if that is later (the flow table does, with the
// capture's clock).
func (t *Tracker) Advance(now time.Time) {
	if now.After(t.clock) {
		t.clock = now
	}
}

// Profile is the timer profile the tracker ages states with.
func (t *Tracker) Profile() *Profile { return &t.cfg.Profile }

// Apply feeds seg into c (of which it must be a segment) and re-derives both endpoints'
// states, reporting changes to OnEvent (unless quiet: a connection rebuilt from its first
// segment tells no one again). It returns what seg was in its direction's sequence space; a
// Duplicate (a SPAN copy) changes nothing but the count of duplicates.
func (t *Tracker) Apply(c *Conn, seg *capture.Segment, quiet bool) reassembly.Kind {
	t.observeOS(c, seg)
	before := [2]State{c.Client.State, c.Server.State}
	kind := c.apply(seg)
	if kind != reassembly.Duplicate {
		if quiet {
			onEvent := t.cfg.OnEvent
			t.cfg.OnEvent = nil
			t.settle(c, seg.Time, seg, before)
			t.cfg.OnEvent = onEvent
		} else {
			t.settle(c, seg.Time, seg, before)
		}
	}
	return kind
}

// Evaluate brings c's states, timers and diagnoses up to date as of now, without a packet
// (the end of the input, --at, a live tick, or a connection finished early).
func (t *Tracker) Evaluate(c *Conn, now time.Time) {
	if !c.done {
		t.settle(c, now, nil, [2]State{c.Client.State, c.Server.State})
	}
	c.diagnose(now, &t.cfg.Profile)
}

// Rediagnose recomputes c's diagnoses as of now, leaving its states as they are.
func (t *Tracker) Rediagnose(c *Conn, now time.Time) { c.diagnose(now, &t.cfg.Profile) }

// EvaluateCopy brings c, a copy of a connection (a snapshot), up to instant at without telling
// OnEvent (a copy's timers are not the run's events), and reports whether it is still open
// then.
func (t *Tracker) EvaluateCopy(c *Conn, at time.Time) bool {
	onEvent := t.cfg.OnEvent
	t.cfg.OnEvent = nil
	if !c.done && at.After(c.LastSeen) {
		t.settle(c, at, nil, [2]State{c.Client.State, c.Server.State})
	}
	c.diagnose(at, &t.cfg.Profile)
	c.AsOf = at
	t.cfg.OnEvent = onEvent
	return c.Open()
}

// Open reports whether c is still open: not CLOSED at both ends.
func (c *Conn) Open() bool { return c.Client.State != Closed || c.Server.State != Closed }

// Done reports whether c was superseded by a new instance of its 4-tuple: it can no longer
// change.
func (c *Conn) Done() bool { return c.done }

// ClosedFor reports whether both endpoints of c are CLOSED at instant at and stay so.
func (t *Tracker) ClosedFor(c *Conn, at time.Time) bool {
	now, last := capture.TimeOf(at), capture.TimeOf(c.LastSeen)
	for _, ep := range [2]*Endpoint{&c.Client, &c.Server} {
		p := t.profileOf(ep)
		if s, _, _ := ep.evaluate(now, p, last); s != Closed {
			return false
		}
		if s, _, _ := ep.evaluate(last.Add(far), p, last); s != Closed {
			return false
		}
	}
	return true
}

// ClosesBy says whether c, left without packets, ends with both endpoints CLOSED (ok), and,
// if so, the latest instant at which a timer still running as of now closes one of them
// (zero if none runs). The flow table uses it to know when to look at c again.
func (t *Tracker) ClosesBy(c *Conn, now time.Time) (closing time.Time, ok bool) {
	last := capture.TimeOf(c.LastSeen)
	for _, ep := range [2]*Endpoint{&c.Client, &c.Server} {
		p := t.profileOf(ep)
		s, since, viaTimer := ep.evaluate(last.Add(far), p, last)
		if s != Closed {
			return time.Time{}, false
		}
		if cur, _, _ := ep.evaluate(capture.TimeOf(now), p, last); cur != Closed && viaTimer && since.Std().After(closing) {
			closing = since.Std()
		}
	}
	return closing, true
}

// far is how far ahead "closed for good" is checked.
const far = 100 * 365 * 24 * time.Hour

// Link makes c the new instance of old's 4-tuple (a SYN with a new ISN took it over, see
// StartsNewInstance): old ends as its hosts' sockets did, and both name each other.
func (t *Tracker) Link(old, c *Conn, seg *capture.Segment) {
	c.Reuses = old.ID
	old.ReusedBy = c.ID
	t.supersede(old, seg)
	c.addDiag(diag(ClientSide, Detail{Kind: DetailPortReused, N: [3]uint64{old.ID}}))
}

// Recycle empties c for a new connection, keeping the buffers it grew (Zeek rows, diagnoses),
// so that tracking allocates nothing once enough connections have been through.
func (c *Conn) Recycle() {
	zv, diags, notes := c.Zeek.Reuse(), c.Diagnoses[:0], c.rstNotes[:0]
	*c = Conn{Zeek: zv, Diagnoses: diags, rstNotes: notes}
}

// SideOf says which endpoint of c sent seg.
func (c *Conn) SideOf(seg *capture.Segment) Side { return c.sideOf(seg) }

// settle re-derives both endpoints' states at time now and reports the changes.
func (t *Tracker) settle(c *Conn, now time.Time, seg *capture.Segment, before [2]State) {
	at := capture.TimeOf(now)
	lastPacket := at // after a packet, now is its time
	if now != c.LastSeen {
		lastPacket = capture.TimeOf(c.LastSeen)
	}
	for side := ClientSide; side <= ServerSide; side++ {
		ep := c.endpoint(side)
		p := t.profileOf(ep)
		s, when, viaTimer, deadline := ep.evaluateTimer(at, p, lastPacket)
		why, unseen := Evidence{}, false
		if c.doubt.active() || seg == nil {
			flightAt := capture.Time(0)
			if seg == nil {
				flightAt = at
				if now.Equal(t.clock) { // the end of the input, not --at
					flightAt = at.Add(endGrace)
				}
			}
			s, when, viaTimer, deadline, why, unseen = c.reconsider(side, at, flightAt, p, lastPacket, s, when, viaTimer, deadline)
		}
		if deadline != 0 || ep.Deadline != (time.Time{}) {
			// Most states run no timer: a zero Deadline stays as it is, without a conversion.
			ep.Deadline = deadline.Std()
		}
		if c.mayInfer(side, viaTimer) {
			ep.Inferred, ep.Evidence = c.inference(side, s, viaTimer)
		} else {
			ep.Inferred, ep.Evidence = false, Evidence{}
		}
		if why.Kind != EvidenceNone {
			ep.Inferred, ep.Evidence = true, why
		}
		if !ep.Inferred && s == FinWait2 && at.Sub(when) >= p.FinWait2Orphan {
			ep.Inferred, ep.Evidence = true, Evidence{Kind: EvidenceOrphan, D: p.FinWait2Orphan}
		}
		if s == before[side] {
			continue
		}
		since := when.Std()
		ep.State, ep.Since = s, since
		if t.cfg.OnEvent == nil || unseen {
			continue
		}
		ev := Event{Time: now, ConnID: c.ID, Side: side, Addr: ep.Addr, Old: before[side], New: s}
		if viaTimer {
			ev.Time = since
			ev.Reason = ReasonTimer // the timer of ev.Old
		} else if seg != nil {
			ev.File, ev.Packet, ev.Flags, ev.Seq, ev.Ack = seg.File, seg.Packet, seg.Flags, seg.Seq, seg.Ack
			ev.Reason, ev.FinSeq = c.reason(seg, side, before[side], s)
		}
		t.cfg.OnEvent(ev)
	}
}

// StartsNewInstance: a SYN with a new initial sequence number on a known 4-tuple is a new
// connection; a SYN retransmission (same ISN) or the late SYN of a reordered handshake is not.
func (t *Tracker) StartsNewInstance(c *Conn, seg *capture.Segment) bool {
	if c.doubt.reconnect && c.acceptsReconnect(seg) {
		return true
	}
	if !seg.Flags.Has(capture.SYN) || seg.Flags.Has(capture.ACK) || seg.Flags.Has(capture.RST) {
		return false
	}
	d := &c.Dir[c.sideOf(seg)]
	if d.SynSeen {
		// A reconnect to a server that still holds the connection is the old one's (reconnect.go).
		return seg.Seq != d.ISN && !c.reconnectSYN(seg)
	}
	if !d.Started {
		return false // simultaneous open: the peer's SYN, or a SYN after a captured SYN-ACK
	}
	// Only a SYN-ACK/ACK anchored this direction so far: the SYN belongs if it fits there.
	return seg.Seq+1 != d.Next && seg.Seq+1 != d.ISN+1
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
			ep.ev.replaced, ep.ev.tReset = true, capture.TimeOf(seg.Time)
			if t.cfg.OnEvent != nil {
				t.cfg.OnEvent(Event{Time: seg.Time, ConnID: c.ID, Side: side, Addr: ep.Addr, Old: old, New: Closed,
					File: seg.File, Packet: seg.Packet, Flags: seg.Flags, Seq: seg.Seq, Ack: seg.Ack,
					Reason: ReasonReplaced})
			}
		}
	}
	c.done = true
	c.diagnose(seg.Time, &t.cfg.Profile)
}

// Start sets up c (a zero or recycled Conn), numbered id, for its first segment seg: which
// side is the client, and what that says about each side before seg is applied (Apply it
// next).
func (t *Tracker) Start(c *Conn, seg *capture.Segment, id uint64) {
	c.ID, c.FirstSeen, c.LastSeen, c.Tunnel = id, seg.Time, seg.Time, seg.Tunnel
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
		c.addDiag(diag(BothSides, Detail{Kind: DetailMidstream}))
	} else if c.RoleInferred {
		// A SYN-ACK first: the client must have sent the SYN the capture missed.
		c.Client.ev.sentSYN = true
		t0 := capture.TimeOf(seg.Time)
		c.Client.ev.firstSYN, c.Client.ev.lastSYN, c.Client.ev.nSYN = t0, t0, 1
		c.Dir[0].Started, c.Dir[0].SynSeen = true, true
		c.Dir[0].ISN = seg.Ack - 1
		c.Dir[0].Next = seg.Ack
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

// Renumber gives c its final ID, and those of the instances before and after it on its
// 4-tuple: a parallel run numbers connections once it knows their order (package run).
func (c *Conn) Renumber(id, reuses, reusedBy uint64) {
	c.ID, c.Reuses, c.ReusedBy = id, reuses, reusedBy
	for i := range c.Diagnoses {
		if c.Diagnoses[i].ID == DiagPortReused {
			c.Diagnoses[i].Detail.N[0] = reuses
		}
	}
}
