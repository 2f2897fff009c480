package kernellab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Address plan of the lab (documentation ranges only).
var (
	ClientPrefixes = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8:1::/64")}
	ServerPrefixes = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8:2::/64")}
)

// Side names the namespace an address lives in: "client", "server", or "" (outside the lab).
func Side(a netip.Addr) string {
	a = a.Unmap()
	for _, p := range ClientPrefixes {
		if p.Contains(a) {
			return "client"
		}
	}
	for _, p := range ServerPrefixes {
		if p.Contains(a) {
			return "server"
		}
	}
	return ""
}

// ToolEndpoint is one endpoint object of a tcpstate JSON line.
type ToolEndpoint struct {
	IP       string `json:"ip"`
	Port     int    `json:"port"`
	State    string `json:"state"`
	Inferred bool   `json:"inferred"`
}

// ToolConn is one connection instance reported by `tcpstate -o json`.
type ToolConn struct {
	ID        json.RawMessage `json:"id"`
	Client    *ToolEndpoint   `json:"client"`
	Server    *ToolEndpoint   `json:"server"`
	FirstSeen string          `json:"first_seen"`
	LastSeen  string          `json:"last_seen"`
	Packets   *int            `json:"packets"`
	Line      int             `json:"-"` // 1-based line in the tool's output
}

// IDString is the connection id as printed by the tool.
func (c ToolConn) IDString() string {
	s := strings.Trim(string(c.ID), `"`)
	if s == "" {
		return fmt.Sprintf("line%d", c.Line)
	}
	return s
}

// ParseToolJSON parses the JSON lines of `tcpstate -o json`. Lines that are not objects with
// both a client and a server are an error: the SPEC says one object per connection instance.
func ParseToolJSON(r io.Reader) ([]ToolConn, error) {
	var out []ToolConn
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var c ToolConn
		if err := json.Unmarshal(line, &c); err != nil {
			return nil, fmt.Errorf("tool output line %d: %v: %.200s", n, err, line)
		}
		if c.Client == nil || c.Server == nil {
			return nil, fmt.Errorf("tool output line %d: no client/server object: %.200s", n, line)
		}
		c.Line = n
		out = append(out, c)
	}
	return out, sc.Err()
}

// Mismatch is one endpoint on which the tool and the kernel disagree.
type Mismatch struct {
	Scenario string
	Conn     string // "id 3 192.0.2.2:40000 > 198.51.100.2:80"
	Endpoint string // client, server, role, or the namespace of a missed row
	Tool     string
	Kernel   string
	Note     string
	// Inferred: the tool flagged this endpoint's state as inferred (not shown by the wire).
	Inferred bool
}

// Result is the agreement of one scenario.
type Result struct {
	Scenario   string
	Agree      int // agreeing endpoints
	Total      int // endpoints compared (two per reported connection, one per missed ss row)
	Conns      int // connections reported by the tool
	Mismatches []Mismatch
}

func (r Result) String() string {
	return fmt.Sprintf("%s: %d/%d endpoints agree (%d connections reported, %d mismatches)",
		r.Scenario, r.Agree, r.Total, r.Conns, len(r.Mismatches))
}

// Table renders mismatches as an aligned table.
func Table(ms []Mismatch) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SCENARIO\tCONNECTION\tENDPOINT\tTOOL SAYS\tKERNEL SAYS\tNOTE")
	for _, m := range ms {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", m.Scenario, m.Conn, m.Endpoint, m.Tool, m.Kernel, m.Note)
	}
	w.Flush()
	return b.String()
}

type tuple struct{ a, b netip.AddrPort } // ordered so that a <= b

func mkTuple(x, y netip.AddrPort) tuple {
	if x.Compare(y) > 0 {
		x, y = y, x
	}
	return tuple{x, y}
}

func parseEndpoint(e *ToolEndpoint) (netip.AddrPort, error) {
	ip, err := netip.ParseAddr(strings.Trim(e.IP, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("ip %q: %v", e.IP, err)
	}
	if e.Port < 0 || e.Port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("port %d out of range", e.Port)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(e.Port)), nil
}

func normState(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return "(none)"
	}
	return s
}

// lookupRow finds the ss row whose local address is local and whose peer is peer.
func lookupRow(rows []SSRow, local, peer netip.AddrPort) (SSRow, bool) {
	for _, r := range rows {
		if r.State == "LISTEN" {
			continue
		}
		if r.Local.Concrete() && r.Peer.Concrete() && r.Local.AddrPort() == local && r.Peer.AddrPort() == peer {
			return r, true
		}
	}
	return SSRow{}, false
}

// Compare holds the tool's connections against the kernel's ss snapshots of the client and
// server namespaces.
//
// Every endpoint of every reported instance is compared with the ss row of the namespace its
// address lives in (by the lab's address plan) whose local address is that endpoint and whose
// peer is the other endpoint; no row means CLOSED. When a 4-tuple has several instances only
// the last (by first_seen, then id, then output order) may match a row; earlier ones must be
// CLOSED on both ends. The tool's client must be the endpoint in the client namespace (the
// lab only ever connects from there). Every non-LISTEN ss row between lab addresses must be
// covered by a reported connection.
func Compare(scenario string, conns []ToolConn, ssClient, ssServer []SSRow) Result {
	res := Result{Scenario: scenario, Conns: len(conns)}
	rowsOf := map[string][]SSRow{"client": ssClient, "server": ssServer}

	type inst struct {
		c        ToolConn
		cl, sv   netip.AddrPort
		first    time.Time
		hasFirst bool
	}
	groups := map[tuple][]*inst{}
	var order []tuple
	reported := map[tuple]bool{}
	for _, c := range conns {
		label := fmt.Sprintf("id %s %s:%d > %s:%d", c.IDString(), c.Client.IP, c.Client.Port, c.Server.IP, c.Server.Port)
		cl, err1 := parseEndpoint(c.Client)
		sv, err2 := parseEndpoint(c.Server)
		if err1 != nil || err2 != nil {
			res.Total += 2
			res.Mismatches = append(res.Mismatches, Mismatch{Scenario: scenario, Conn: label, Endpoint: "both", Tool: "unparseable", Kernel: "-", Note: fmt.Sprint(err1, "; ", err2)})
			continue
		}
		in := &inst{c: c, cl: cl, sv: sv}
		if t, err := time.Parse(time.RFC3339Nano, c.FirstSeen); err == nil {
			in.first, in.hasFirst = t, true
		}
		k := mkTuple(cl, sv)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], in)
		reported[k] = true
	}
	for _, k := range order {
		g := groups[k]
		sort.SliceStable(g, func(i, j int) bool {
			a, b := g[i], g[j]
			if a.hasFirst && b.hasFirst && !a.first.Equal(b.first) {
				return a.first.Before(b.first)
			}
			ia, ea := idNum(a.c.ID)
			ib, eb := idNum(b.c.ID)
			if ea && eb && ia != ib {
				return ia < ib
			}
			return a.c.Line < b.c.Line
		})
		for i, in := range g {
			last := i == len(g)-1
			label := fmt.Sprintf("id %s %s > %s", in.c.IDString(), in.cl, in.sv)
			if len(g) > 1 {
				label += fmt.Sprintf(" (instance %d/%d)", i+1, len(g))
			}
			if Side(in.cl.Addr()) == "server" && Side(in.sv.Addr()) == "client" {
				res.Mismatches = append(res.Mismatches, Mismatch{scenario, label, "role",
					"client=" + in.cl.String(), "client=" + in.sv.String(), "the lab connects from the client namespace", false})
			}
			for _, ep := range []struct {
				role        string
				e           *ToolEndpoint
				self, other netip.AddrPort
			}{{"client", in.c.Client, in.cl, in.sv}, {"server", in.c.Server, in.sv, in.cl}} {
				res.Total++
				tool := normState(ep.e.State)
				ns := Side(ep.self.Addr())
				if ns == "" {
					res.Mismatches = append(res.Mismatches, Mismatch{Scenario: scenario, Conn: label, Endpoint: ep.role, Tool: tool, Kernel: "?", Note: "address outside the lab ranges"})
					continue
				}
				kernel, note := "CLOSED", "no ss row in "+ns
				if row, ok := lookupRow(rowsOf[ns], ep.self, ep.other); ok {
					if last {
						kernel, note = row.Canonical(), fmt.Sprintf("ss-%s line %d", ns, row.LineNo)
					} else {
						note = "earlier instance of a reused 4-tuple"
					}
				}
				if tool == kernel {
					res.Agree++
					continue
				}
				res.Mismatches = append(res.Mismatches, Mismatch{Scenario: scenario, Conn: label, Endpoint: ep.role, Tool: tool, Kernel: kernel, Note: note, Inferred: ep.e.Inferred})
			}
		}
	}
	// Coverage: every connection the kernel knows about must have been reported.
	for _, ns := range []string{"client", "server"} {
		for _, r := range rowsOf[ns] {
			if r.State == "LISTEN" || !r.Local.Concrete() || !r.Peer.Concrete() {
				continue
			}
			if Side(r.Local.Addr) == "" || Side(r.Peer.Addr) == "" {
				continue
			}
			if reported[mkTuple(r.Local.AddrPort(), r.Peer.AddrPort())] {
				continue
			}
			res.Total++
			res.Mismatches = append(res.Mismatches, Mismatch{scenario,
				fmt.Sprintf("%s > %s (not reported)", r.Local.AddrPort(), r.Peer.AddrPort()), ns,
				"(missing)", r.Canonical(), fmt.Sprintf("ss-%s line %d", ns, r.LineNo), false})
		}
	}
	return res
}

func idNum(raw json.RawMessage) (float64, bool) {
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, false
	}
	return f, true
}
