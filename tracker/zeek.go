package tracker

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/reassembly"
)

// ZeekView follows a connection the way Zeek's TCP analyzer does, so that conn_state and
// history can be reported exactly as Zeek's conn.log would have them. It is a second engine
// beside the endpoint state machines: Zeek's endpoint states are not socket states, and its
// notion of a connection is not ours either. Zeek ends a connection on its own timers (an
// unanswered SYN after 5 s, inactivity, 5 s after both sides closed, ...) and starts a new one
// on the next packet, so one Conn can be several conn.log rows: Rows lists them.
//
// The engine transcribes Zeek's TCPSessionAdapter (Process, UpdateStateMachine and its
// Update*State helpers, ConnectionClosed, the timers), TCP_Endpoint (sequence tracking, Size,
// scaled history entries) and the parts of TCP_Reassembler that make content gaps ('G') and
// decide when a close is deferred. Zeek sees every packet, duplicates included; packets with a
// bad checksum (capture.Config.VerifyChecksums) only add 'C'.
type ZeekView struct {
	// History is the history of the first row (Rows()[0]), kept for callers that show one
	// label per connection. It is brought up to date when the connection is diagnosed.
	History string
	// RowsDropped counts rows left out to keep a connection's memory bounded: beyond
	// MaxZeekRows, the oldest row but the first is dropped for each new one (Rows says which
	// row of the connection each kept one is).
	RowsDropped uint64

	cfg  *ZeekConfig
	rows []*zrow
}

// MaxZeekRows caps the conn.log rows kept for one connection. Zeek starts a new row for a SYN
// after a close and for the first packet after its timers ended a row, so a 4-tuple hammered
// by crafted traffic would otherwise grow a row (about 500 bytes) every few packets, without
// end. Legitimate traffic makes a handful; the cap keeps the first row (the connection's own
// conn_state and history) and the latest ones, and counts the rest.
const MaxZeekRows = 100

// ZeekConfig says which Zeek setup to mimic.
type ZeekConfig struct {
	// Bare mimics `zeek -b`: no base scripts, so likely_server_ports holds only ServerPorts
	// and the interactive-service inactivity timeouts of base/protocols/conn are not applied.
	Bare bool
	// ServerPorts are added to likely_server_ports (ports of the scripts a bare run loaded,
	// or local additions).
	ServerPorts []uint16
}

// likely reports whether port p is in Zeek's likely_server_ports.
func (c *ZeekConfig) likely(p uint16) bool {
	if c == nil {
		return zeekDefaultServerPorts.has(p)
	}
	if !c.Bare && zeekDefaultServerPorts.has(p) {
		return true
	}
	for _, x := range c.ServerPorts {
		if x == p {
			return true
		}
	}
	return false
}

func (c *ZeekConfig) bare() bool { return c != nil && c.Bare }

// zeekDefaultServerPorts is likely_server_ports for TCP as Zeek's base scripts fill it: the
// ports the protocol scripts register their analyzers for (Analyzer::register_for_ports adds
// them).
var zeekDefaultServerPorts = portSet(
	// ftp
	21, 2811,
	// ssh
	22,
	// smtp
	25, 587,
	// dns
	53,
	// finger
	79,
	// http
	80, 81, 631, 1080, 3128, 8000, 8080, 8888,
	// krb
	88,
	// dce-rpc
	135,
	// smb
	139, 445,
	// imap
	143,
	// irc
	6666, 6667, 6668, 6669,
	// ldap
	389, 3268,
	// ssl
	443, 563, 585, 614, 636, 989, 990, 992, 993, 995, 5223,
	// modbus
	502,
	// mysql
	1434, 3306,
	// mqtt
	1883,
	// rdp
	3389,
	// xmpp
	5222, 5269,
	// postgresql
	5432,
	// redis
	6379,
	// dnp3
	20000,
)

// portBits is a set of ports, one bit each (cheaper to test than a map).
type portBits [65536 / 64]uint64

func (b *portBits) has(p uint16) bool { return b[p>>6]&(1<<(p&63)) != 0 }

func portSet(ports ...uint16) *portBits {
	b := new(portBits)
	for _, p := range ports {
		b[p>>6] |= 1 << (p & 63)
	}
	return b
}

// zeekInteractivePorts get a 1 h inactivity timeout once established (base/protocols/conn/
// inactivity.zeek, not loaded in bare mode).
var zeekInteractivePorts = portSet(21, 22, 23, 513)

// Zeek's timing constants (init-bare.zeek).
const (
	zeekSYNTimeout        = 5 * time.Second  // tcp_SYN_timeout: first ExpireTimer
	zeekSessionTimer      = 6 * time.Second  // tcp_session_timer: ExpireTimer period
	zeekConnectionLinger  = 5 * time.Second  // tcp_connection_linger
	zeekAttemptDelay      = 5 * time.Second  // tcp_attempt_delay
	zeekCloseDelay        = 5 * time.Second  // tcp_close_delay
	zeekInitialInactivity = time.Minute      // udp_inactivity_timeout, set by TCPAnalyzer::MakeSessionAdapter
	zeekTCPInactivity     = 5 * time.Minute  // tcp_inactivity_timeout
	zeekInteractive       = time.Hour        // Conn::port_inactivity_timeouts
	zeekTooLargeSeqDelta  = 1048576          // TOO_LARGE_SEQ_DELTA
	zeekMaxInitialWindow  = 16384            // tcp_max_initial_window
	zeekMaxAboveHole      = 16384            // tcp_max_above_hole_without_any_acks
	zeekExcessiveData     = 10 * 1024 * 1024 // tcp_excessive_data_without_further_acks
)

// ZeekState is Zeek's per-endpoint TCP state (TCP_ENDPOINT_*).
type ZeekState uint8

const (
	ZeekInactive ZeekState = iota
	ZeekSynSent
	ZeekSynAckSent
	ZeekPartial
	ZeekEstablished
	ZeekClosed
	ZeekReset
)

var zeekStateNames = [...]string{"INACTIVE", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL", "ESTABLISHED", "CLOSED", "RESET"}

func (s ZeekState) String() string {
	if int(s) < len(zeekStateNames) {
		return zeekStateNames[s]
	}
	return "UNKNOWN"
}

// isHandshake: Inactive, SynSent or SynAckSent (the first three states).
func isHandshake(s ZeekState) bool { return s <= ZeekSynAckSent }

// History masks (TCP_Endpoint.h); a responder's are shifted by 16 in Zeek, here indexed by role.
const (
	histSYN = 1 << iota
	histFIN
	histRST
	histFinRst
	histData
	histAck
	histMulti
)

// ZeekRow is one conn.log row: a connection as Zeek delimits it.
type ZeekRow struct {
	// Orig is the endpoint of the Conn that Zeek took as originator.
	Orig Side
	// Start is the first packet's time; Last is Zeek's last_time (it stops advancing once both
	// sides closed, so duration leaves out the final ACK, as Zeek's does).
	Start, Last time.Time
	ConnState   string
	History     string
	// Indexed [0] originator, [1] responder.
	Pkts    [2]uint64 // orig_pkts, resp_pkts (packets with a bad checksum are not counted)
	IPBytes [2]uint64 // orig_ip_bytes, resp_ip_bytes
	Bytes   [2]uint64 // orig_bytes, resp_bytes: from sequence numbers (TCP_Endpoint::Size)
	// MissedBytes is the sum of the content gaps Zeek reported (missed_bytes).
	MissedBytes uint64
	// States are the endpoints' final Zeek states, [0] originator.
	States [2]ZeekState
	// N is the row's number among all the rows Zeek would write for the connection, from 1:
	// after dropped rows (ZeekView.RowsDropped) the numbers jump.
	N uint64
}

// Duration is Zeek's duration field; conn.log leaves duration and the byte counts unset when
// it is zero.
func (r ZeekRow) Duration() time.Duration { return r.Last.Sub(r.Start) }

// Rows returns the conn.log rows Zeek would write for this connection, in order.
func (z *ZeekView) Rows() []ZeekRow {
	out := make([]ZeekRow, len(z.rows))
	for i, r := range z.rows {
		out[i] = r.row()
		out[i].N = uint64(i) + 1
		if i > 0 {
			out[i].N += z.RowsDropped
		}
	}
	return out
}

// Orig is the side Zeek takes as originator (in the first row).
func (z *ZeekView) Orig() Side {
	if len(z.rows) == 0 {
		return ClientSide
	}
	return z.rows[0].orig
}

// ConnState is Zeek's conn_state (of the first row).
func (z *ZeekView) ConnState() string {
	if len(z.rows) == 0 {
		return "OTH"
	}
	return z.rows[0].connState()
}

// observe feeds one segment, as Zeek would see it: every packet, duplicates included.
func (z *ZeekView) observe(c *Conn, seg *capture.Segment, from Side, _ reassembly.Kind) {
	t := at(seg.Time)
	from &= 1 // a Side is 0 or 1: lets the compiler drop the bounds checks below
	var r *zrow
	if n := len(z.rows); n > 0 {
		r = z.rows[n-1]
		if (r.timerDue(t) && r.expired(t)) || (seg.Flags&capture.SYN != 0 && r.isReuse(seg, from)) {
			r = nil
		}
	}
	if r == nil {
		var old *zrow // a row of a recycled connection, to reuse (see stream.recycle)
		if n := len(z.rows); n >= MaxZeekRows {
			old = z.rows[1]
			copy(z.rows[1:], z.rows[2:])
			z.rows = z.rows[:n-1]
			z.RowsDropped++
		} else if n < cap(z.rows) {
			old = z.rows[:n+1][n]
		}
		r = newZrow(z.cfg, seg, from, old, t)
		z.rows = append(z.rows, r)
	}
	if !r.fastPacket(seg, from, t) {
		r.packet(seg, from, t)
	}
}

// syncHistory brings History up to date with the first row (done when the connection is
// diagnosed, rather than on every letter, which would allocate per packet).
func (z *ZeekView) syncHistory() {
	if len(z.rows) > 0 && string(z.rows[0].history) != z.History {
		z.History = string(z.rows[0].history)
	}
}

// scaled is Zeek's ScaledHistoryEntry: true at the 1st, 10th, 100th, ... occurrence.
type scaled struct{ cnt, thresh uint32 }

func (s *scaled) hit() bool {
	if s.thresh == 0 {
		s.thresh = 1
	}
	s.cnt++
	if s.cnt != s.thresh {
		return false
	}
	if nt := s.thresh * 10; nt <= s.thresh {
		s.cnt = 0
	} else {
		s.thresh = nt
	}
	return true
}

type span struct{ from, to uint64 }

// ztime is a packet time in Unix nanoseconds (0: unset), smaller than a time.Time.
type ztime int64

func at(t time.Time) ztime                { return ztime(t.UnixNano()) }
func (t ztime) add(d time.Duration) ztime { return t + ztime(d) }
func (t ztime) time() time.Time           { return time.Unix(0, int64(t)).UTC() }

// zreasm is the part of TCP_Reassembler that decides gaps and pending data: sequence numbers
// are relative (the first data byte after the SYN is 1).
type zreasm struct {
	lastReassem uint64 // everything below was delivered (or given up as a gap)
	trim        uint64 // everything below was acknowledged
	pending     []span // undelivered data above a hole, sorted and merged
	skip        bool   // skip_deliveries
	didEOF      bool
}

// zendpoint is TCP_Endpoint.
type zendpoint struct {
	state, prev ZeekState
	startSeq    int64
	lastSeq     capture.Seq
	ackSeq      capture.Seq
	seqWraps    uint32
	ackWraps    uint32
	// Relative sequence numbers of the last SYN, FIN and RST, for repeated letters.
	lastSYN, lastFIN, lastRST uint64
	finCnt, rstCnt            int
	finSeq                    uint64
	didClose                  bool
	chk, rxmt, win0, gap      scaled
	re                        zreasm
}

func (e *zendpoint) relSeqSpace(seq capture.Seq, wraps uint32) uint64 {
	return uint64(wraps)<<32 + uint64(seq) - uint64(e.startSeq)
}

// noDataAcked: none of the endpoint's data acknowledged (one octet allowed, for the SYN).
func (e *zendpoint) noDataAcked() bool {
	ack := uint64(e.ackWraps)<<32 + uint64(e.ackSeq)
	start := uint64(e.startSeq)
	return ack == start || ack == start+1
}

// size is TCP_Endpoint::Size: payload bytes from sequence numbers.
func (e *zendpoint) size(peer *zendpoint) uint64 {
	if e.prev == ZeekSynSent && e.state == ZeekReset && peer.state == ZeekInactive && !e.noDataAcked() {
		return 0
	}
	last := uint64(e.seqWraps)<<32 + uint64(e.lastSeq)
	ack := uint64(e.ackWraps)<<32 + uint64(e.ackSeq)
	var size uint64
	if last > ack {
		size = last - uint64(e.startSeq)
	} else {
		size = ack - uint64(e.startSeq)
	}
	if size != 0 {
		size--
	}
	if e.finCnt > 0 && size != 0 {
		size--
	}
	return size
}

func (e *zendpoint) hasUndelivered() bool { return len(e.re.pending) > 0 }

// zrow is one Zeek connection: Connection plus TCPSessionAdapter.
type zrow struct {
	cfg     *ZeekConfig
	orig    Side      // which of our sides is Zeek's originator
	ports   [2]uint16 // by side
	ep      [2]zendpoint
	history []byte
	seen    [2]uint16 // hist_seen, by role: [0] originator, [1] responder

	start, lastTime ztime
	pkts, ipBytes   [2]uint64 // by role, as ConnSize counts (its counters flip with the roles)
	missed          uint64

	firstPacketSeen uint8 // bit 1 orig, bit 2 resp
	isPartial       bool
	active          bool // is_active
	closeDeferred   bool
	deferredGen     bool

	// Timers. Zero times are unset.
	inactivity  time.Duration
	attemptAt   ztime
	expireAt    []ztime // pending ExpireTimer instances
	deleteAt    ztime   // ConnDeleteTimer
	established bool    // connection_established raised in this packet
}

const (
	zeekOrig = 1
	zeekResp = 2
)

// newZrow starts a row; it reuses old (and its buffers) when given.
func newZrow(cfg *ZeekConfig, seg *capture.Segment, from Side, old *zrow, t ztime) *zrow {
	r := old
	if r == nil {
		r = &zrow{}
	}
	*r = zrow{cfg: cfg, orig: from, start: t, lastTime: t, active: true,
		inactivity: zeekInitialInactivity, history: r.history[:0], expireAt: r.expireAt[:0]}
	for i := range r.ep {
		// The rest of zreasm is zero already: setting the two fields spares copying the whole
		// struct (and its pointer's write barrier).
		r.ep[i].re.lastReassem, r.ep[i].re.trim = 1, 1
	}
	r.expireAt = append(r.expireAt, t.add(zeekSYNTimeout))
	r.ports[from], r.ports[1-from] = seg.Src.Port(), seg.Dst.Port()
	// TCPAnalyzer::WantConnection: a connection not starting with a pure SYN is flipped when
	// its source port looks like a server's and its destination's does not (or both do, the
	// packet is no SYN-ACK and the source port is the lower).
	f := seg.Flags
	if !f.Has(capture.SYN) || f.Has(capture.ACK) {
		sp, dp := seg.Src.Port(), seg.Dst.Port()
		if cfg.likely(sp) {
			flip := true
			if cfg.likely(dp) {
				flip = !f.Has(capture.SYN) && sp < dp
			}
			if flip {
				r.flipRoles()
			}
		}
	}
	return r
}

func (r *zrow) isOrig(s Side) bool { return s == r.orig }

func (r *zrow) role(s Side) int {
	if s == r.orig {
		return 0
	}
	return 1
}

// flipRoles is Connection::FlipRoles with TCPSessionAdapter::FlipRoles.
func (r *zrow) flipRoles() {
	r.orig = 1 - r.orig
	fps := r.firstPacketSeen
	r.firstPacketSeen = 0
	if fps&zeekOrig != 0 {
		r.firstPacketSeen |= zeekResp
	}
	if fps&zeekResp != 0 {
		r.firstPacketSeen |= zeekOrig
	}
	r.isPartial = false
	r.pkts[0], r.pkts[1] = r.pkts[1], r.pkts[0]
	r.ipBytes[0], r.ipBytes[1] = r.ipBytes[1], r.ipBytes[0]
	r.history = append(r.history, '^')
}

func (r *zrow) letter(s Side, c byte) {
	if !r.isOrig(s) {
		c += 'a' - 'A'
	}
	r.history = append(r.history, c)
}

// checkHistory is Connection::CheckHistory: adds c the first time mask is seen for s's role
// and reports whether it had been seen before.
func (r *zrow) checkHistory(s Side, mask uint16, c byte) bool {
	ro := r.role(s)
	if r.seen[ro]&mask == 0 {
		r.seen[ro] |= mask
		r.letter(s, c)
		return false
	}
	return true
}

func (r *zrow) setState(s Side, st ZeekState) {
	e, peer := &r.ep[s&1], &r.ep[(s&1)^1]
	if st == e.state {
		return
	}
	if !isHandshake(st) && isHandshake(e.state) && isHandshake(peer.state) {
		r.setInactivity(zeekTCPInactivity)
	}
	e.prev, e.state = e.state, st
}

func (r *zrow) setInactivity(d time.Duration) { r.inactivity = d }

func (r *zrow) addTimer(t ztime) {
	if len(r.expireAt) < 16 {
		r.expireAt = append(r.expireAt, t)
	}
}

func (r *zrow) cancelTimers() {
	r.attemptAt = 0
	r.expireAt = r.expireAt[:0] // the buffer is kept for the next row (newZrow)
}

// timerDue reports whether a timer is due by t: if not, expired(t) would do nothing and
// report false. It inlines.
func (r *zrow) timerDue(t ztime) bool {
	if (r.deleteAt != 0 && t >= r.deleteAt) || r.lastTime.add(r.inactivity) <= t ||
		(r.attemptAt != 0 && t >= r.attemptAt) {
		return true
	}
	for _, e := range r.expireAt {
		if e <= t {
			return true
		}
	}
	return false
}

// expired runs Zeek's timers up to t (they fire before a packet of time t is processed) and
// reports whether one of them removed the connection.
func (r *zrow) expired(t ztime) bool {
	if r.deleteAt != 0 && t >= r.deleteAt {
		return true
	}
	if r.lastTime.add(r.inactivity) <= t {
		return true // Connection::InactivityTimer: last_time + timeout <= t
	}
	if r.attemptAt != 0 && t >= r.attemptAt {
		r.attemptAt = 0
		o, p := r.ep[r.orig].state, r.ep[1-r.orig].state
		if r.active && (o == ZeekSynSent || o == ZeekSynAckSent) && p == ZeekInactive {
			return true // AttemptTimer: connection_attempt
		}
	}
	// Usually no ExpireTimer is due: the list is left as it is.
	for _, e := range r.expireAt {
		if e <= t {
			return r.runExpireTimers(t)
		}
	}
	return false
}

// runExpireTimers fires the ExpireTimers due by t (at least one is) and reports whether one of
// them removed the connection.
func (r *zrow) runExpireTimers(t ztime) bool {
	kept := r.expireAt[:0]
	removed := false
	for _, e := range r.expireAt {
		for e <= t && !removed {
			if !r.active {
				e = 0
				break
			}
			if r.expireRemoves(e) {
				removed = true
				break
			}
			e = e.add(zeekSessionTimer)
		}
		if e != 0 {
			kept = append(kept, e)
		}
	}
	r.expireAt = kept
	return removed
}

// expireRemoves is the test of TCPSessionAdapter::ExpireTimer at time t.
func (r *zrow) expireRemoves(t ztime) bool {
	if r.lastTime.add(zeekConnectionLinger) >= t {
		return false
	}
	o, p := &r.ep[r.orig], &r.ep[1-r.orig]
	if o.didClose || p.didClose {
		if (o.didClose && p.didClose) || o.state == ZeekReset || p.state == ZeekReset ||
			o.state == ZeekInactive || p.state == ZeekInactive {
			return true
		}
	}
	return o.state == ZeekInactive && p.state == ZeekInactive
}

// isReuse is TCPSessionAdapter::IsReuse: a SYN that starts a new connection on the 4-tuple.
func (r *zrow) isReuse(seg *capture.Segment, from Side) bool {
	f := seg.Flags
	if !f.Has(capture.SYN) {
		return false
	}
	connOrig := &r.ep[r.orig]
	if f.Has(capture.ACK) {
		if connOrig.state != ZeekInactive {
			return false
		}
		connOrig = &r.ep[1-r.orig]
	}
	if !(r.ep[0].didClose || r.ep[1].didClose) {
		if seg.Seq == capture.Seq(connOrig.startSeq) {
			return false
		}
		resp := &r.ep[1-r.orig]
		if !f.Has(capture.ACK) && connOrig.state == ZeekSynAckSent && resp.state == ZeekInactive &&
			seg.Seq == capture.Seq(resp.startSeq) {
			return false // SYN and SYN-ACK reversed: Process flips the roles
		}
	}
	return true
}

func segLen(n uint32, f capture.Flags) uint32 {
	l := n
	if f.Has(capture.SYN) {
		l++
	}
	if f.Has(capture.FIN) {
		l++
	}
	if f.Has(capture.RST) {
		l -= n
	}
	return l
}

func seqDelta(a, b capture.Seq) int32 { return int32(a - b) }

// relSeqFast is relSeq when no wrap was seen and cur makes none (ok); it inlines.
func relSeqFast(e *zendpoint, cur, last capture.Seq, wraps uint32) (rel uint64, under, ok bool) {
	if wraps != 0 || (cur < last && seqDelta(cur, last) > 0) {
		return 0, false, false
	}
	d := seqDelta(cur, capture.Seq(e.startSeq))
	return uint64(int64(d)), d < 0, true
}

// relSeq is get_relative_seq.
func relSeq(e *zendpoint, cur, last capture.Seq, wraps uint32) (uint64, bool) {
	delta := seqDelta(cur, last)
	if delta < 0 {
		if wraps > 0 && cur > last {
			wraps--
		}
	} else if delta > 0 && cur < last {
		wraps++
	}
	if wraps == 0 {
		d := seqDelta(cur, capture.Seq(e.startSeq))
		return uint64(int64(d)), d < 0
	}
	return e.relSeqSpace(cur, wraps), false
}

// fastPacket is packet for the common segment: no SYN, FIN or RST, a good checksum, a whole
// header, and both endpoints past Inactive. It reports false, having changed nothing, for any
// other segment. For such a segment init_endpoint and UpdateStateMachine do nothing and no
// role flip can happen, so this is packet with those parts left out; from is 0 or 1.
func (r *zrow) fastPacket(seg *capture.Segment, from Side, t ztime) bool {
	f := seg.Flags
	if f&(capture.SYN|capture.FIN|capture.RST) != 0 || seg.BadChecksum || seg.Truncated {
		return false
	}
	from &= 1
	ep, peer := &r.ep[from], &r.ep[from^1]
	if ep.state == ZeekInactive || peer.state == ZeekInactive {
		return false
	}
	isOrig := from == r.orig
	role := int((from ^ r.orig) & 1) // r.role(from)
	r.established = false

	baseSeq, n := seg.Seq, seg.PayloadLen
	r.setPartialStatus(f, isOrig)
	onePast := baseSeq + capture.Seq(n) // segLen
	rel, underflow, ok := relSeqFast(ep, baseSeq, ep.lastSeq, ep.seqWraps)
	if !ok {
		rel, underflow = relSeq(ep, baseSeq, ep.lastSeq, ep.seqWraps)
	}
	// update_history
	if n > 0 {
		if r.seen[role]&histData == 0 {
			r.seen[role] |= histData
			r.letter(from, 'D')
		}
	} else if f&capture.ACK != 0 {
		if r.seen[role]&histAck == 0 {
			r.seen[role] |= histAck
			r.letter(from, 'A')
		}
	}
	if seg.Window == 0 && peer.state != ZeekClosed && ep.state != ZeekReset {
		if ep.win0.hit() {
			r.letter(from, 'W')
		}
	}
	if !r.ep[0].didClose || !r.ep[1].didClose {
		r.lastTime = t
	}
	var relAck uint64
	if f&capture.ACK != 0 {
		ackSeq := seg.Ack
		ra, under, ok := relSeqFast(peer, ackSeq, peer.ackSeq, peer.ackWraps)
		if !ok {
			ra, under = relSeq(peer, ackSeq, peer.ackSeq, peer.ackWraps)
		}
		if !under {
			relAck = ra
			d := seqDelta(ackSeq, peer.ackSeq)
			if !(ackSeq == 0 && d > zeekTooLargeSeqDelta) && d > 0 {
				if ackSeq < peer.ackSeq {
					peer.ackWraps++
				}
				peer.ackSeq = ackSeq
			}
		}
	}
	// update_last_seq
	switch d := seqDelta(onePast, ep.lastSeq); {
	case ep.state == ZeekReset:
	case d > 0:
		ep.updateLastSeq(onePast)
	case n > 0:
		if ep.rxmt.hit() {
			r.letter(from, 'T')
		}
	}
	if f&capture.ACK != 0 {
		// The test that ackReceived starts with: most ACKs acknowledge nothing new.
		seq := relAck
		if peer.finCnt > 0 && seq >= peer.finSeq {
			seq = peer.finSeq - 1
		}
		if seq > peer.re.trim {
			if seq <= peer.re.lastReassem && !peer.eofMayBeDue() {
				peer.re.trim = seq // all ackReceived does then
			} else {
				r.ackReceived(from^1, relAck)
			}
		}
	}
	// CheckPIA_FirstPacket
	if isOrig {
		r.firstPacketSeen |= zeekOrig
	} else {
		r.firstPacketSeen |= zeekResp
	}
	if n > 0 && !underflow {
		re := &ep.re
		if !re.skip && len(re.pending) == 0 && rel == re.lastReassem && rel >= re.trim &&
			rel >= ep.relSeqSpace(ep.ackSeq, ep.ackWraps) && !ep.noDataAcked() {
			// dataSent for the next bytes in order, nothing above a hole, some data acked.
			re.lastReassem = rel + uint64(n)
			if re.lastReassem-re.trim > zeekExcessiveData {
				re.pending = nil
				re.skip = true
			}
		} else {
			r.dataSent(from, rel, uint64(n))
		}
	}
	if ep.eofMayBeDue() {
		r.checkEOF(from)
	}
	// ConnSize counts with the direction the packet had when it arrived.
	r.pkts[role]++
	r.ipBytes[role] += uint64(seg.IPLen)
	return true
}

// packet is TCPAnalyzer::DeliverPacket and TCPSessionAdapter::Process for one segment, at t
// (seg.Time). from is 0 or 1. (fastPacket does the common segments; TestZeekFastPathsAsFullPath
// checks it against this.)
func (r *zrow) packet(seg *capture.Segment, from Side, t ztime) {
	f := seg.Flags
	from &= 1
	ep, peer := &r.ep[from], &r.ep[from^1]

	if seg.BadChecksum {
		// TCPAnalyzer::ValidateChecksum: the packet goes no further.
		if ep.chk.hit() {
			r.letter(from, 'C')
		}
		return
	}
	if seg.Truncated {
		return // truncated_header: the TCP header is not all there
	}
	// A connection that began with a SYN-ACK, and has seen nothing else, that now sees an ACK
	// or data (either way) was no stealth scan: the SYN-ACK's sender is the responder
	// (zeek/zeek#2191). Zeek decides it before the packet is counted, and writes the history
	// as if the roles had been known from the start ("^h").
	if o, p := &r.ep[r.orig], &r.ep[1-r.orig]; string(r.history) == "H" && o.state == ZeekSynAckSent &&
		p.state == ZeekInactive && !f.Has(capture.SYN) && !f.Has(capture.RST) &&
		(f.Has(capture.ACK) || seg.PayloadLen > 0) {
		r.flipFromSynAck()
	}
	isOrig, role := r.isOrig(from), r.role(from)
	r.established = false

	baseSeq, ackSeq, n := seg.Seq, seg.Ack, seg.PayloadLen
	r.setPartialStatus(f, isOrig)
	sl := segLen(n, f)
	onePast := baseSeq + capture.Seq(sl)
	r.initEndpoint(ep, f, baseSeq, onePast)
	rel, underflow := relSeq(ep, baseSeq, ep.lastSeq, ep.seqWraps)
	r.updateHistory(from, f, rel, uint64(n))
	if seg.Window == 0 && !f.Has(capture.RST) && peer.state != ZeekClosed && ep.state != ZeekReset {
		if ep.win0.hit() {
			r.letter(from, 'W')
		}
	}
	if !r.ep[0].didClose || !r.ep[1].didClose {
		r.lastTime = t
	}
	if f.Has(capture.FIN) {
		ep.finCnt++
		ep.finSeq = rel + uint64(sl)
	}
	if f.Has(capture.RST) {
		ep.rstCnt++
	}
	var relAck uint64
	if f.Has(capture.ACK) {
		if peer.state == ZeekInactive {
			relAck = 1
			peer.startSeq = int64(ackSeq - 1)
			peer.ackSeq = ackSeq - 1
			peer.lastSeq = ackSeq - 1
		} else {
			ra, under := relSeq(peer, ackSeq, peer.ackSeq, peer.ackWraps)
			if under {
				relAck = 0
			} else {
				relAck = ra
				if !f.Has(capture.RST) {
					d := seqDelta(ackSeq, peer.ackSeq)
					if !(ackSeq == 0 && d > zeekTooLargeSeqDelta) && d > 0 {
						if ackSeq < peer.ackSeq {
							peer.ackWraps++
						}
						peer.ackSeq = ackSeq
					}
				}
			}
		}
	}
	r.updateLastSeq(from, onePast, f, n)

	doClose, genEvent := r.updateStateMachine(t, from, baseSeq, ackSeq, n, isOrig, f)

	if f.Has(capture.ACK) {
		r.ackReceived(from^1, relAck)
	}
	// CheckPIA_FirstPacket
	if isOrig {
		r.firstPacketSeen |= zeekOrig
	} else {
		r.firstPacketSeen |= zeekResp
	}
	relData := rel
	if f.Has(capture.SYN) {
		relData++
	}
	if n > 0 && !f.Has(capture.RST) && !underflow {
		r.dataSent(from, relData, uint64(n))
	}
	r.checkEOF(from)
	if doClose {
		r.connectionClosed(from, genEvent)
	}

	// ConnSize counts with the direction the packet had when it arrived.
	r.pkts[role]++
	r.ipBytes[role] += uint64(seg.IPLen)

	if r.established && !r.cfg.bare() {
		// base/protocols/conn/inactivity.zeek, on connection_established.
		o, p := r.portOf(r.orig), r.portOf(1-r.orig)
		svc := p
		if r.ep[r.orig].state == ZeekInactive && !r.cfg.likely(p) && r.cfg.likely(o) {
			svc = o
		}
		if zeekInteractivePorts.has(svc) {
			r.setInactivity(zeekInteractive)
		}
	}
}

// ports, by side, recorded on the first packet.
func (r *zrow) portOf(s Side) uint16 { return r.ports[s] }

// flipFromSynAck flips a connection whose first packet, a SYN-ACK, turned out to come from the
// responder; the history is rewritten as if the roles had been known from the start.
func (r *zrow) flipFromSynAck() {
	h := r.history
	r.flipRoles()
	nh := make([]byte, 0, len(h)+1)
	nh = append(nh, '^')
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		nh = append(nh, c)
	}
	r.history = nh
	r.seen[0], r.seen[1] = r.seen[1], r.seen[0]
}

func (r *zrow) setPartialStatus(f capture.Flags, isOrig bool) {
	if isOrig {
		if r.firstPacketSeen&zeekOrig == 0 {
			r.isPartial = !f.Has(capture.SYN) || f.Has(capture.ACK)
		}
	} else if r.firstPacketSeen&zeekResp == 0 && !r.isPartial {
		r.isPartial = !f.Has(capture.SYN)
	}
}

// initEndpoint is init_endpoint.
func (r *zrow) initEndpoint(e *zendpoint, f capture.Flags, first, last capture.Seq) {
	reinit := func() {
		e.startSeq = int64(first)
		e.ackSeq = first
		e.lastSeq = last
	}
	switch e.state {
	case ZeekInactive:
		if f.Has(capture.SYN) {
			e.ackSeq = first
			e.startSeq = int64(first)
		} else {
			e.ackSeq = first - 1
			e.startSeq = int64(first - 1)
			last = first
		}
		e.lastSeq = last
	case ZeekSynSent, ZeekSynAckSent:
		if f.Has(capture.SYN) && first != capture.Seq(e.startSeq) {
			reinit()
		}
	case ZeekEstablished, ZeekPartial:
		if f.Has(capture.SYN) {
			reinit()
		}
	case ZeekReset:
		if f.Has(capture.SYN) && e.prev == ZeekInactive {
			reinit()
		}
	}
}

// updateHistory is update_history.
func (r *zrow) updateHistory(s Side, f capture.Flags, rel, n uint64) {
	e := &r.ep[s&1]
	ctl := f & (capture.SYN | capture.FIN | capture.RST)
	switch {
	case ctl&(ctl-1) != 0: // more than one of them
		if f.Has(capture.FIN | capture.RST) {
			r.checkHistory(s, histFinRst, 'I')
		} else {
			r.checkHistory(s, histMulti, 'Q')
		}
	case ctl != 0:
		if f.Has(capture.SYN) {
			code := byte('S')
			if f.Has(capture.ACK) {
				code = 'H'
			}
			if r.checkHistory(s, histSYN, code) && rel != e.lastSYN {
				r.letter(s, code)
			}
			e.lastSYN = rel
		}
		if f.Has(capture.FIN) {
			if r.checkHistory(s, histFIN, 'F') && rel+n != e.lastFIN {
				r.letter(s, 'F')
			}
			e.lastFIN = rel + n
		}
		if f.Has(capture.RST) {
			if r.checkHistory(s, histRST, 'R') && rel != e.lastRST {
				r.letter(s, 'R')
			}
			e.lastRST = rel
		}
	default:
		if n > 0 {
			r.checkHistory(s, histData, 'D')
		} else if f.Has(capture.ACK) {
			r.checkHistory(s, histAck, 'A')
		}
	}
}

// updateLastSeq is update_last_seq: a payload that does not advance the highest sequence
// number seen is a retransmission ('T').
func (r *zrow) updateLastSeq(s Side, last capture.Seq, f capture.Flags, n uint32) {
	e := &r.ep[s&1]
	d := seqDelta(last, e.lastSeq)
	switch {
	case (f.Has(capture.SYN) || f.Has(capture.RST)) && (d > zeekTooLargeSeqDelta || d < -zeekTooLargeSeqDelta):
	case f.Has(capture.FIN) && e.lastSeq == capture.Seq(e.startSeq)+1:
		e.updateLastSeq(last)
	case e.state == ZeekReset:
	case d > 0:
		e.updateLastSeq(last)
	case n > 0:
		if e.rxmt.hit() {
			r.letter(s, 'T')
		}
	}
}

func (e *zendpoint) updateLastSeq(seq capture.Seq) {
	if seq < e.lastSeq {
		e.seqWraps++
	}
	e.lastSeq = seq
}

// updateStateMachine is UpdateStateMachine and the Update*State functions.
func (r *zrow) updateStateMachine(t ztime, s Side, baseSeq, ackSeq capture.Seq, n uint32, isOrig bool,
	f capture.Flags) (doClose, genEvent bool) {
	e, peer := &r.ep[s&1], &r.ep[(s&1)^1]
	syn, fin, rst, ack := f.Has(capture.SYN), f.Has(capture.FIN), f.Has(capture.RST), f.Has(capture.ACK)
	switch e.state {
	case ZeekInactive:
		if syn {
			if isOrig {
				if ack {
					r.setState(s, ZeekSynAckSent)
				} else {
					r.setState(s, ZeekSynSent)
				}
				if r.attemptAt == 0 {
					r.attemptAt = t.add(zeekAttemptDelay)
				}
			} else {
				if !ack && peer.state == ZeekSynAckSent && baseSeq == capture.Seq(e.startSeq) {
					// A SYN/SYN-ACK reversal: flip and establish.
					r.isPartial = false
					r.flipRoles()
					r.setState(1-s, ZeekEstablished)
					r.firstPacketSeen |= zeekOrig
				}
				if peer.state == ZeekSynSent {
					r.setState(1-s, ZeekEstablished)
				}
				r.setState(s, ZeekEstablished)
				if peer.state != ZeekPartial {
					r.established = true
				}
			}
		}
		if fin {
			r.setState(s, ZeekClosed)
			doClose, genEvent = true, true
		}
		if rst {
			r.setState(s, ZeekReset)
			reject := false
			if isOrig {
				reject = peer.state == ZeekEstablished
			} else {
				reject = peer.state == ZeekSynSent || peer.state == ZeekSynAckSent
			}
			doClose, genEvent = true, !reject
		}
		if e.state == ZeekInactive {
			switch {
			case !isOrig && n == 0 && r.ep[r.orig].state == ZeekSynSent:
				// An ACK of the SYN before the SYN-ACK: not a partial connection.
			case ack && peer.state == ZeekEstablished:
				// SYN-ACK seen but not the SYN, and now an ACK: the SYN was missed.
				r.setState(s, ZeekEstablished)
				r.isPartial = false
				if r.isOrig(s) {
					r.firstPacketSeen |= zeekOrig
				} else {
					r.firstPacketSeen |= zeekResp
				}
			default:
				r.setState(s, ZeekPartial)
			}
		}
	case ZeekSynSent, ZeekSynAckSent:
		if fin {
			r.setState(s, ZeekClosed)
			doClose, genEvent = true, true
		}
		if rst {
			r.setState(s, ZeekReset)
			r.active = false // ConnectionReset
			doClose = true
		}
	case ZeekEstablished, ZeekPartial:
		if syn && e.state == ZeekPartial && peer.state == ZeekInactive && !ack {
			r.setState(s, ZeekSynSent)
		}
		if fin && !rst {
			r.setState(s, ZeekClosed)
			if peer.state == ZeekReset && peer.prev == ZeekClosed {
				// The peer's FIN then RST was a normal close after all.
				r.setState(1-s, ZeekClosed)
			}
			doClose, genEvent = true, true
		}
		if rst {
			r.setState(s, ZeekReset)
			doClose = true
			if peer.state != ZeekReset || peer.prev != ZeekEstablished {
				r.active = false
			}
		}
	case ZeekClosed:
		if rst && peer.state != ZeekClosed {
			r.setState(s, ZeekReset)
			if !e.didClose {
				doClose = true
			}
		}
	case ZeekReset:
	}
	return doClose, genEvent
}

func isClean(e *zendpoint) bool {
	return e.state == ZeekEstablished || (e.state == ZeekClosed && e.prev == ZeekEstablished)
}

// ackReceived is TCP_Reassembler::AckReceived for side s's data, at relative sequence seq.
func (r *zrow) ackReceived(s Side, seq uint64) {
	e := &r.ep[s&1]
	if e.finCnt > 0 && seq >= e.finSeq {
		seq = e.finSeq - 1
	}
	if seq <= e.re.trim {
		return
	}
	if seq > e.re.lastReassem {
		r.undelivered(s, seq)
	}
	e.re.trim = seq
	if e.eofMayBeDue() {
		r.checkEOF(s)
	}
}

// undelivered is TCP_Reassembler::Undelivered: the peer acknowledged data never seen.
func (r *zrow) undelivered(s Side, upTo uint64) {
	e := &r.ep[s&1]
	if upTo <= 2 && r.isPartial {
		return
	}
	re := &e.re
	if !re.skip {
		for len(re.pending) > 0 && re.pending[0].from < upTo {
			b := re.pending[0]
			r.gap(s, b.from-re.lastReassem)
			re.lastReassem = b.to
			re.pending = re.pending[1:]
		}
		if upTo > re.lastReassem {
			r.gap(s, upTo-re.lastReassem)
		}
	}
	if upTo > re.lastReassem {
		re.lastReassem = upTo
	}
	for len(re.pending) > 0 && re.pending[0].to <= re.lastReassem {
		re.pending = re.pending[1:]
	}
}

// gap is TCP_Reassembler::Gap: 'G' and missed_bytes, for a cleanly established connection.
func (r *zrow) gap(s Side, n uint64) {
	if isClean(&r.ep[s&1]) && isClean(&r.ep[(s&1)^1]) {
		if r.ep[s].gap.hit() {
			r.letter(s, 'G')
		}
		r.missed += n
	}
}

// dataSent is TCP_Reassembler::DataSent (with NewBlock and BlockInserted).
func (r *zrow) dataSent(s Side, seq, n uint64) {
	e := &r.ep[s&1]
	re := &e.re
	if re.skip {
		return
	}
	ack := e.relSeqSpace(e.ackSeq, e.ackWraps)
	upper := seq + n
	if seq < ack {
		if upper <= ack {
			return
		}
		seq = ack
	}
	if upper <= re.trim {
		return
	}
	if seq < re.trim {
		seq = re.trim
	}
	switch {
	case seq <= re.lastReassem && upper > re.lastReassem:
		re.lastReassem = upper
		for len(re.pending) > 0 && re.pending[0].from <= re.lastReassem {
			if re.pending[0].to > re.lastReassem {
				re.lastReassem = re.pending[0].to
			}
			re.pending = re.pending[1:]
		}
		if e.noDataAcked() && e.size(&r.ep[(s&1)^1]) > zeekMaxInitialWindow && re.lastReassem > re.trim {
			re.trim = re.lastReassem
		}
	case seq > re.lastReassem:
		re.pending = addSpan(re.pending, span{seq, upper})
	}
	if e.noDataAcked() && len(re.pending) > 0 && re.pending[len(re.pending)-1].to-re.lastReassem > zeekMaxAboveHole {
		re.pending = nil
		re.skip = true
	}
	// Buffered: delivered but not yet acknowledged, and waiting above a hole.
	var buffered uint64
	if re.lastReassem > re.trim {
		buffered = re.lastReassem - re.trim
	}
	for _, b := range re.pending {
		buffered += b.to - b.from
	}
	if buffered > zeekExcessiveData {
		re.pending = nil
		re.skip = true
	}
}

// addSpan inserts b into the sorted, merged list l (bounded: the oldest holes are forgotten).
func addSpan(l []span, b span) []span {
	out := make([]span, 0, len(l)+1)
	placed := false
	for _, x := range l {
		switch {
		case x.to < b.from:
			out = append(out, x)
		case b.to < x.from:
			if !placed {
				out = append(out, b)
				placed = true
			}
			out = append(out, x)
		default:
			b = span{min(b.from, x.from), max(b.to, x.to)}
		}
	}
	if !placed {
		out = append(out, b)
	}
	if len(out) > 64 {
		out = out[len(out)-64:]
	}
	return out
}

// dataPending is TCP_Reassembler::DataPending for side s.
func (r *zrow) dataPending(s Side) bool {
	e, peer := &r.ep[s&1], &r.ep[(s&1)^1]
	if e.re.skip {
		return false
	}
	delivered := uint64(e.startSeq) + e.re.lastReassem
	last := uint64(e.seqWraps)<<32 + uint64(e.lastSeq)
	if last < delivered {
		return false
	}
	if delivered != last-1 && delivered != last {
		return true
	}
	return e.state != ZeekReset && peer.hasUndelivered()
}

// eofMayBeDue is the test checkEOF starts with, but for dataPending: if false, checkEOF does
// nothing. It inlines.
func (e *zendpoint) eofMayBeDue() bool {
	return !e.re.didEOF && (e.finCnt > 0 || e.state == ZeekClosed || e.state == ZeekReset)
}

// checkEOF is TCP_Reassembler::CheckEOF with TCPSessionAdapter::EndpointEOF.
func (r *zrow) checkEOF(s Side) {
	e := &r.ep[s&1]
	if e.re.didEOF || !(e.finCnt > 0 || e.state == ZeekClosed || e.state == ZeekReset) || r.dataPending(s) {
		return
	}
	e.re.didEOF = true
	if r.closeDeferred {
		r.connectionClosed(s, r.deferredGen)
		r.closeDeferred = false
	}
}

// connectionClosed is TCPSessionAdapter::ConnectionClosed.
func (r *zrow) connectionClosed(s Side, genEvent bool) {
	e, peer := &r.ep[s&1], &r.ep[(s&1)^1]
	if r.dataPending(s) {
		r.closeDeferred = true
		if !r.deferredGen {
			r.deferredGen = genEvent
		}
		return
	}
	r.closeDeferred = false
	if e.didClose {
		return
	}
	e.didClose = true
	if e.state == ZeekReset || peer.didClose || peer.state == ZeekInactive {
		if e.prev != ZeekInactive || peer.state != ZeekInactive {
			if r.deferredGen {
				genEvent = true
				r.deferredGen = false
			}
			if genEvent {
				r.active = false // ConnectionFinished
			}
		}
		r.cancelTimers()
		if d := r.lastTime.add(zeekCloseDelay); r.deleteAt == 0 || d < r.deleteAt {
			r.deleteAt = d
		}
	} else if e.prev != ZeekInactive {
		r.addTimer(r.lastTime.add(zeekSessionTimer))
	}
}

// connState is conn_state() of base/protocols/conn/main.zeek.
func (r *zrow) connState() string {
	o, p := &r.ep[r.orig], &r.ep[1-r.orig]
	os, rs := o.state, p.state
	oInactive := os == ZeekInactive || os == ZeekPartial
	rInactive := rs == ZeekInactive || rs == ZeekPartial
	switch {
	case rs == ZeekReset:
		if os == ZeekSynSent || os == ZeekSynAckSent || (os == ZeekReset && o.size(p) == 0 && p.size(o) == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == ZeekReset:
		if rInactive {
			if rstos0(string(r.history)) {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == ZeekClosed && os == ZeekClosed:
		return "SF"
	case os == ZeekClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == ZeekClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == ZeekSynSent && rs == ZeekInactive:
		return "S0"
	case os == ZeekEstablished && rs == ZeekEstablished:
		return "S1"
	}
	return "OTH"
}

func (r *zrow) row() ZeekRow {
	o, p := &r.ep[r.orig], &r.ep[1-r.orig]
	return ZeekRow{Orig: r.orig, Start: r.start.time(), Last: r.lastTime.time(), ConnState: r.connState(),
		History: string(r.history), Pkts: r.pkts, IPBytes: r.ipBytes,
		Bytes: [2]uint64{o.size(p), p.size(o)}, MissedBytes: r.missed, States: [2]ZeekState{o.state, p.state}}
}

// rstos0 matches Zeek's /\^?S[^HAFGIQ]*R.*/ against the whole history.
func rstos0(h string) bool {
	i := 0
	if i < len(h) && h[i] == '^' {
		i++
	}
	if i >= len(h) || h[i] != 'S' {
		return false
	}
	for i++; i < len(h); i++ {
		switch h[i] {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}
