// Package tracker owns connections: the flow table, the two endpoint state machines of every
// connection, timers, and diagnoses. It reads time only from segments, never from the wall
// clock, so a capture replays the same way every time.
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
	if s >= numStates || n > NamesBSD {
		return "UNKNOWN"
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
	}
	return 0, fmt.Errorf("unknown --names %q: use rfc, linux, windows or bsd", s)
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
}

// Profiles by --os name.
var profiles = map[string]Profile{
	// Linux: TCP_TIMEWAIT_LEN 60 s; tcp_syn_retries 6 plus tcp_syn_linear_timeouts 4 (6.x):
	// SYNs at 0,1,2,3,4,5,7,11,19,35,69 s, giving up at about 134 s (measured in the kernel
	// lab); tcp_synack_retries 5 (1+2+4+8+16+32 = 63 s); tcp_fin_timeout 60 s.
	"linux": {Name: "linux", TimeWait: 60 * time.Second, SynRetries: 10, SynTimeout: 134 * time.Second,
		SynAckRetries: 5, SynAckTimeout: 63 * time.Second, FinWait2Orphan: 60 * time.Second},
	// Windows: TcpTimedWaitDelay 120 s; TcpMaxConnectRetransmissions 2 (3+6+12 = 21 s);
	// TcpMaxConnectResponseRetransmissions 2.
	"windows": {Name: "windows", TimeWait: 120 * time.Second, SynRetries: 2, SynTimeout: 21 * time.Second,
		SynAckRetries: 2, SynAckTimeout: 21 * time.Second, FinWait2Orphan: 120 * time.Second},
	// FreeBSD/macOS: MSL 15 s → TIME_WAIT 30 s; connection-establishment timer tcp_keepinit 75 s.
	"bsd": {Name: "bsd", TimeWait: 30 * time.Second, SynRetries: 7, SynTimeout: 75 * time.Second,
		SynAckRetries: 3, SynAckTimeout: 75 * time.Second, FinWait2Orphan: 60 * time.Second},
}

// LookupProfile returns the timer profile for --os.
func LookupProfile(name string) (Profile, error) {
	switch strings.ToLower(name) {
	case "", "linux":
		return profiles["linux"], nil
	case "windows", "win":
		return profiles["windows"], nil
	case "bsd", "freebsd", "macos", "darwin":
		return profiles["bsd"], nil
	}
	return Profile{}, fmt.Errorf("unknown --os %q: use linux, windows or bsd", name)
}
