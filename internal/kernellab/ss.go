package kernellab

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// SSRow is one socket line of `ss -tan` (or `ss -tano`) output.
type SSRow struct {
	State  string // as ss prints it: ESTAB, SYN-SENT, TIME-WAIT, ...
	RecvQ  int
	SendQ  int
	Local  SSAddr
	Peer   SSAddr
	Extra  string // anything after the peer column (e.g. the timer:(...) column of -o)
	LineNo int    // 1-based line number in the input
}

// SSAddr is an ss address column: an address (or the wildcard) and a port (or the wildcard).
type SSAddr struct {
	Addr     netip.Addr // invalid (zero) when the address is a wildcard (* 0.0.0.0 ::)
	Port     uint16
	AnyAddr  bool   // *, 0.0.0.0 or ::
	AnyPort  bool   // port printed as *
	Zone     string // interface of a scoped address ("%eth0"), if any
	Original string
}

// Concrete reports whether the column names one definite address and port.
func (a SSAddr) Concrete() bool { return !a.AnyAddr && !a.AnyPort && a.Addr.IsValid() }

// AddrPort returns the concrete address and port (zero value when not Concrete).
func (a SSAddr) AddrPort() netip.AddrPort {
	if !a.Concrete() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Addr, a.Port)
}

func (a SSAddr) String() string { return a.Original }

// ssToCanonical maps ss state names to the SPEC canonical names.
var ssToCanonical = map[string]string{
	"LISTEN":     "LISTEN",
	"SYN-SENT":   "SYN_SENT",
	"SYN-RECV":   "SYN_RECEIVED",
	"ESTAB":      "ESTABLISHED",
	"FIN-WAIT-1": "FIN_WAIT_1",
	"FIN-WAIT-2": "FIN_WAIT_2",
	"CLOSE-WAIT": "CLOSE_WAIT",
	"CLOSING":    "CLOSING",
	"LAST-ACK":   "LAST_ACK",
	"TIME-WAIT":  "TIME_WAIT",
	"UNCONN":     "CLOSED",
	"CLOSED":     "CLOSED",
}

// CanonicalState maps an ss state name (ESTAB, SYN-RECV, ...) to the SPEC canonical name
// (ESTABLISHED, SYN_RECEIVED, ...). ok is false for a name ss does not print for TCP.
func CanonicalState(ssName string) (canonical string, ok bool) {
	c, ok := ssToCanonical[strings.ToUpper(strings.TrimSpace(ssName))]
	return c, ok
}

// Canonical is the row's state as a SPEC canonical name.
func (r SSRow) Canonical() string {
	c, ok := CanonicalState(r.State)
	if !ok {
		return r.State
	}
	return c
}

// ParseSS parses `ss -tan` / `ss -tano` output. The header line is skipped; every other
// non-empty line must be a socket row.
func ParseSS(r io.Reader) ([]SSRow, error) {
	var rows []SSRow
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if f[0] == "State" || f[0] == "Netid" {
			continue // header
		}
		if len(f) < 5 {
			return nil, fmt.Errorf("ss line %d: want at least 5 columns, got %q", n, line)
		}
		row := SSRow{State: f[0], LineNo: n}
		if _, ok := CanonicalState(row.State); !ok {
			return nil, fmt.Errorf("ss line %d: unknown state %q", n, row.State)
		}
		var err error
		if row.RecvQ, err = strconv.Atoi(f[1]); err != nil {
			return nil, fmt.Errorf("ss line %d: Recv-Q %q: %v", n, f[1], err)
		}
		if row.SendQ, err = strconv.Atoi(f[2]); err != nil {
			return nil, fmt.Errorf("ss line %d: Send-Q %q: %v", n, f[2], err)
		}
		if row.Local, err = ParseSSAddr(f[3]); err != nil {
			return nil, fmt.Errorf("ss line %d: local address: %v", n, err)
		}
		if row.Peer, err = ParseSSAddr(f[4]); err != nil {
			return nil, fmt.Errorf("ss line %d: peer address: %v", n, err)
		}
		if len(f) > 5 {
			row.Extra = strings.Join(f[5:], " ")
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

// ParseSSAddr parses one ss address column: 192.0.2.1:80, [2001:db8::1]:80, *:*, 0.0.0.0:*,
// [::]:*, *:80, [fe80::1]%eth0:22, 127.0.0.53%lo:53, [::ffff:192.0.2.1]:80 (IPv4-mapped
// addresses are unmapped to plain IPv4, as the tool reports them).
func ParseSSAddr(s string) (SSAddr, error) {
	a := SSAddr{Original: s}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return a, fmt.Errorf("%q: no port", s)
	}
	host, port := s[:i], s[i+1:]
	if port == "*" {
		a.AnyPort = true
	} else {
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			return a, fmt.Errorf("%q: bad port: %v", s, err)
		}
		a.Port = uint16(p)
	}
	if strings.HasPrefix(host, "[") {
		j := strings.IndexByte(host, ']')
		if j < 0 {
			return a, fmt.Errorf("%q: unterminated [", s)
		}
		rest := host[j+1:]
		host = host[1:j]
		if strings.HasPrefix(rest, "%") {
			a.Zone = rest[1:]
		} else if rest != "" {
			return a, fmt.Errorf("%q: junk after ]", s)
		}
	} else if k := strings.IndexByte(host, '%'); k >= 0 {
		a.Zone = host[k+1:]
		host = host[:k]
	}
	if k := strings.IndexByte(host, '%'); k >= 0 { // zone inside the brackets
		a.Zone = host[k+1:]
		host = host[:k]
	}
	if host == "*" {
		a.AnyAddr = true
		return a, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return a, fmt.Errorf("%q: bad address: %v", s, err)
	}
	if ip.IsUnspecified() {
		a.AnyAddr = true
		return a, nil
	}
	a.Addr = ip.Unmap()
	return a, nil
}
