// Package zeek is the Zeek view of a connection: a second engine beside the socket-state
// machines (package tracker) that follows Zeek's TCP analyzer, so that conn_state and history
// can be reported exactly as Zeek's conn.log would have them. The flow table feeds it every
// segment of a connection through its segment observer, duplicates included; it needs nothing
// but the segment and which side sent it.
package zeek

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// View follows a connection the way Zeek's TCP analyzer does, so that conn_state and
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
type View struct {
	// History is the history of the first row (Rows()[0]), kept for callers that show one
	// label per connection. It is brought up to date when the connection is diagnosed.
	History string
	// RowsDropped counts rows left out to keep a connection's memory bounded: beyond
	// MaxRows, the oldest row but the first is dropped for each new one (Rows says which
	// row of the connection each kept one is).
	RowsDropped uint64

	cfg  *Config
	rows []*zrow
}

// MaxRows caps the conn.log rows kept for one connection. Zeek starts a new row for a SYN
// after a close and for the first packet after its timers ended a row, so a 4-tuple hammered
// by crafted traffic would otherwise grow a row (about 500 bytes) every few packets, without
// end. Legitimate traffic makes a handful; the cap keeps the first row (the connection's own
// conn_state and history) and the latest ones, and counts the rest.
const MaxRows = 100

// Config says which Zeek setup to mimic.
type Config struct {
	// Bare mimics `zeek -b`: no base scripts, so likely_server_ports holds only ServerPorts
	// and the interactive-service inactivity timeouts of base/protocols/conn are not applied.
	Bare bool
	// ServerPorts are added to likely_server_ports (ports of the scripts a bare run loaded,
	// or local additions).
	ServerPorts []uint16
}

// likely reports whether port p is in Zeek's likely_server_ports.
func (c *Config) likely(p uint16) bool {
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

func (c *Config) bare() bool { return c != nil && c.Bare }

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

// State is Zeek's per-endpoint TCP state (TCP_ENDPOINT_*).
type State uint8

const (
	Inactive State = iota
	SynSent
	SynAckSent
	Partial
	Established
	Closed
	Reset
)

var zeekStateNames = [...]string{"INACTIVE", "SYN_SENT", "SYN_ACK_SENT", "PARTIAL", "ESTABLISHED", "CLOSED", "RESET"}

func (s State) String() string {
	if int(s) < len(zeekStateNames) {
		return zeekStateNames[s]
	}
	return "UNKNOWN"
}

// isHandshake: Inactive, SynSent or SynAckSent (the first three states).
func isHandshake(s State) bool { return s <= SynAckSent }

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

// Row is one conn.log row: a connection as Zeek delimits it.
type Row struct {
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
	States [2]State
	// N is the row's number among all the rows Zeek would write for the connection, from 1:
	// after dropped rows (View.RowsDropped) the numbers jump.
	N uint64
}

// Duration is Zeek's duration field; conn.log leaves duration and the byte counts unset when
// it is zero.
func (r Row) Duration() time.Duration { return r.Last.Sub(r.Start) }

// Rows returns the conn.log rows Zeek would write for this connection, in order.
func (z *View) Rows() []Row {
	out := make([]Row, len(z.rows))
	for i, r := range z.rows {
		out[i] = r.row()
		out[i].N = uint64(i) + 1
		if i > 0 {
			out[i].N += z.RowsDropped
		}
	}
	return out
}

// ConnState is Zeek's conn_state (of the first row).
func (z *View) ConnState() string {
	if len(z.rows) == 0 {
		return "OTH"
	}
	return z.rows[0].connState()
}

// Side is one endpoint of the connection as the tracker names it: Client (the endpoint that
// sent the first SYN) or Server. Zeek's own originator may be either (Row.Orig).
type Side uint8

const (
	Client Side = iota
	Server
)

// Observe feeds one segment, sent by side from, as Zeek would see it: every packet,
// duplicates included (they are its retransmissions).
func (z *View) Observe(seg *capture.Segment, from Side) {
	t := capture.TimeOf(seg.Time)
	from &= 1 // a Side is 0 or 1: lets the compiler drop the bounds checks below
	var r *zrow
	if n := len(z.rows); n > 0 {
		r = z.rows[n-1]
		if (r.timerDue(t) && r.expired(t)) || (seg.Flags&capture.SYN != 0 && r.isReuse(seg, from)) {
			r = nil
		}
	}
	if r == nil {
		var old *zrow // a row of a recycled connection, to reuse (see View.Reuse)
		if n := len(z.rows); n >= MaxRows {
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

// Bind makes the view (and every row of it) follow the Zeek setup cfg: a new view, or one
// unpacked, is bound before it observes anything.
func (z *View) Bind(cfg *Config) {
	z.cfg = cfg
	for _, r := range z.rows {
		r.cfg = cfg
	}
}

// Reuse returns an empty view that keeps z's row buffers, for a recycled connection: tracking
// then allocates nothing once enough connections have been through.
func (z *View) Reuse() View { return View{rows: z.rows[:0]} }

// SyncHistory brings History up to date with the first row (done when the connection is
// diagnosed, rather than on every letter, which would allocate per packet).
func (z *View) SyncHistory() {
	if len(z.rows) > 0 && string(z.rows[0].history) != z.History {
		z.History = string(z.rows[0].history)
	}
}
