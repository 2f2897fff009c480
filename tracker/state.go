// Package tracker is the TCP engine: the two endpoint state machines of a connection (the
// evidence each endpoint's packets give, and derive, one table from evidence to state), the
// RST rules, the timer profiles of each OS and the diagnoses. It keeps no flow table (package
// flowtable finds the connection a segment belongs to and hands it here) and no wording: a
// diagnosis, the evidence for an inferred state, an event's reason, how a connection ended and
// a RST's verdict leave it as data, a kind and the facts (packets, counts, times, sides, states;
// facts.go), and package report writes the sentences. Its only words are the errors for a bad
// --os, --names or state name. It reads time only from segments or from its caller, never from
// the wall clock, so a capture replays the same way every time.
package tracker

import (
	"fmt"
	"strings"
	"time"
)

// State is an endpoint's TCP state (RFC 9293 names).
type State uint8

const (
	Closed State = iota
	Listen
	SynSent
	SynReceived
	Established
	FinWait1
	FinWait2
	CloseWait
	Closing
	LastAck
	TimeWait
	numStates
)

// Naming is a vocabulary of state names: as RFC 9293 (canonical, used in JSON and events) or
// as one operating system's own tools print them.
type Naming uint8

const (
	NamesRFC Naming = iota
	NamesLinux
	NamesWindows
	NamesBSD
	// NamesAuto: each endpoint's state as its own OS prints it (Endpoint.StateName); where one
	// name serves both ends (counts, events), the RFC name.
	NamesAuto
)

var stateNames = [4][numStates]string{
	NamesRFC:     {"CLOSED", "LISTEN", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"},
	NamesLinux:   {"UNCONN", "LISTEN", "SYN-SENT", "SYN-RECV", "ESTAB", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"},
	NamesWindows: {"CLOSED", "LISTENING", "SYN_SENT", "SYN_RECEIVED", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"},
	NamesBSD:     {"CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1", "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"},
}

// String is the canonical (RFC) name.
func (s State) String() string { return s.Name(NamesRFC) }

// Name is the state's name in vocabulary n.
func (s State) Name(n Naming) string {
	if s >= numStates {
		return "UNKNOWN"
	}
	if n > NamesBSD {
		n = NamesRFC
	}
	return stateNames[n][s]
}

// ParseState accepts a state name in any vocabulary.
func ParseState(name string) (State, error) {
	up := strings.ToUpper(strings.TrimSpace(name))
	for n := range stateNames {
		for s, v := range stateNames[n] {
			if v == up {
				return State(s), nil
			}
		}
	}
	return 0, fmt.Errorf("unknown TCP state %q (use e.g. ESTABLISHED, TIME_WAIT, CLOSE_WAIT)", name)
}

// ParseNaming parses a --names value.
func ParseNaming(s string) (Naming, error) {
	switch strings.ToLower(s) {
	case "rfc", "":
		return NamesRFC, nil
	case "linux", "ss":
		return NamesLinux, nil
	case "windows", "win":
		return NamesWindows, nil
	case "bsd", "macos", "freebsd", "darwin":
		return NamesBSD, nil
	case "auto":
		return NamesAuto, nil
	}
	return 0, fmt.Errorf("unknown --names %q: use rfc, linux, windows, bsd or auto (each endpoint in its own OS's names)", s)
}

// Open reports whether the state holds a live socket that can still exchange data or wait on
// its peer (everything but CLOSED, LISTEN and TIME_WAIT).
func (s State) Open() bool { return s != Closed && s != Listen && s != TimeWait }

// Profile holds one operating system's timers: how long states last when nothing more is seen.
type Profile struct {
	Name string
	// TimeWait is how long TIME_WAIT lasts (2·MSL).
	TimeWait time.Duration
	// SynRetries: SYN retransmissions before connect() gives up; SynTimeout the total time.
	SynRetries int
	SynTimeout time.Duration
	// SynAckRetries / SynAckTimeout: the same for a SYN-ACK waiting for the final ACK.
	SynAckRetries int
	SynAckTimeout time.Duration
	// FinWait2Orphan: how long FIN_WAIT_2 lasts once the application has closed the socket
	// (after shutdown() alone it lasts for ever). The wire cannot tell the two, so past it the
	// state stays FIN_WAIT_2 but is marked inferred.
	FinWait2Orphan time.Duration
	// DataRetries / DataTimeout: retransmissions of unacknowledged data before the connection
	// is dropped, and about how long that takes with the default backoff.
	DataRetries int
	DataTimeout time.Duration
	// Keepalive defaults: idle time before the first probe, interval, probes before giving up.
	KeepIdle     time.Duration
	KeepInterval time.Duration
	KeepCount    int
	// ChallengeACK: an in-window RST or SYN that is not exact draws a challenge ACK
	// (RFC 5961) rather than resetting the connection.
	ChallengeACK bool
}

// Profiles by --os name.
var profiles = map[string]Profile{
	// Linux (net/ipv4/tcp.c, include/net/tcp.h, Documentation/networking/ip-sysctl.rst):
	// TCP_TIMEWAIT_LEN 60 s; tcp_syn_retries 6 plus tcp_syn_linear_timeouts 4 (6.x): SYNs at
	// 0,1,2,3,4,5,7,11,19,35,69 s, giving up at about 134 s (measured in the kernel lab);
	// tcp_synack_retries 5 (1+2+4+8+16+32 = 63 s); tcp_fin_timeout 60 s; tcp_retries2 15
	// (about 924.6 s with RTO_MIN 200 ms, RTO_MAX 120 s); tcp_keepalive_time 7200 s,
	// tcp_keepalive_intvl 75 s, tcp_keepalive_probes 9; RFC 5961 challenge ACKs since 3.6
	// (tcp_validate_incoming). gVisor's netstack has the same defaults (pkg/tcpip/transport/tcp
	// protocol.go: DefaultTCPTimeWaitTimeout 60 s, DefaultTCPLingerTimeout 60 s, MaxRetries 15,
	// DefaultKeepalive* 2 h/75 s/9; RFC 5961 in connect.go handleReset) but SYN retries
	// doubling from 1 s (DefaultSynRetries 6: 0,1,3,7,15,31,63 s, giving up at 127 s).
	"linux": {Name: "linux", TimeWait: 60 * time.Second, SynRetries: 10, SynTimeout: 134 * time.Second,
		SynAckRetries: 5, SynAckTimeout: 63 * time.Second, FinWait2Orphan: 60 * time.Second,
		DataRetries: 15, DataTimeout: 924600 * time.Millisecond,
		KeepIdle: 2 * time.Hour, KeepInterval: 75 * time.Second, KeepCount: 9, ChallengeACK: true},
	// Windows (learn.microsoft.com, "TCP/IP and NBT configuration parameters for Windows XP"
	// and "Settings that can be modified to improve network performance"): TcpTimedWaitDelay
	// 120 s; TcpMaxConnectRetransmissions 2 (3+6+12 = 21 s); TcpMaxConnectResponseRetransmissions
	// 2; TcpMaxDataRetransmissions 5 (about 30 s of doubling); KeepAliveTime 2 h,
	// KeepAliveInterval 1 s, 10 probes (TcpMaxDataRetransmissions up to Vista). FIN_WAIT_2
	// after close: no documented parameter; 120 s (as TIME_WAIT) is this profile's assumption,
	// not verified. RFC 5961 challenge ACKs: not documented; assumed (Windows 8 and later).
	"windows": {Name: "windows", TimeWait: 120 * time.Second, SynRetries: 2, SynTimeout: 21 * time.Second,
		SynAckRetries: 2, SynAckTimeout: 21 * time.Second, FinWait2Orphan: 120 * time.Second,
		DataRetries: 5, DataTimeout: 30 * time.Second,
		KeepIdle: 2 * time.Hour, KeepInterval: time.Second, KeepCount: 10, ChallengeACK: true},
	// FreeBSD (sys/netinet/tcp_timer.h, tcp(4)): TCPTV_MSL 30 s, TIME_WAIT 2·MSL = 60 s;
	// connection-establishment timer net.inet.tcp.keepinit 75 s ends the SYN retries; SYN-ACKs
	// from the syncache, net.inet.tcp.syncache.rexmtlimit 3; data: TCP_MAXRXTSHIFT 12
	// retransmissions, minutes with the backoff table (8 min is this profile's round figure);
	// net.inet.tcp.keepidle 2 h, keepintvl 75 s, keepcnt 8 (TCPTV_KEEPCNT);
	// net.inet.tcp.finwait2_timeout 60 s; RFC 5961 challenge ACKs (net.inet.tcp.insecure_rst 0).
	"bsd": {Name: "bsd", TimeWait: 60 * time.Second, SynRetries: 7, SynTimeout: 75 * time.Second,
		SynAckRetries: 3, SynAckTimeout: 75 * time.Second, FinWait2Orphan: 60 * time.Second,
		DataRetries: 12, DataTimeout: 8 * time.Minute,
		KeepIdle: 2 * time.Hour, KeepInterval: 75 * time.Second, KeepCount: 8, ChallengeACK: true},
	// macOS (xnu bsd/netinet/tcp_timer.h, sysctl net.inet.tcp): where it differs from FreeBSD,
	// TCPTV_MSL 15 s (net.inet.tcp.msl 15000), so TIME_WAIT 30 s; the rest keeps FreeBSD's
	// values (keepinit 75 s, keepidle 2 h, keepintvl 75 s, keepcnt 8, FIN_WAIT_2 60 s, RFC
	// 5961 challenge ACKs in tcp_input.c).
	"macos": {Name: "macos", TimeWait: 30 * time.Second, SynRetries: 7, SynTimeout: 75 * time.Second,
		SynAckRetries: 3, SynAckTimeout: 75 * time.Second, FinWait2Orphan: 60 * time.Second,
		DataRetries: 12, DataTimeout: 8 * time.Minute,
		KeepIdle: 2 * time.Hour, KeepInterval: 75 * time.Second, KeepCount: 8, ChallengeACK: true},
}

// LookupProfile returns the timer profile for --os.
func LookupProfile(name string) (Profile, error) {
	switch strings.ToLower(name) {
	case "", "linux":
		return profiles["linux"], nil
	case "windows", "win":
		return profiles["windows"], nil
	case "bsd", "freebsd":
		return profiles["bsd"], nil
	case "macos", "darwin":
		return profiles["macos"], nil
	}
	return Profile{}, fmt.Errorf("unknown --os %q: use linux, windows, bsd or macos", name)
}
