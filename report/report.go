// Package report writes what the tracker produced: the ss-like table, JSON lines, events and
// Zeek conn.log rows. The tracker never formats text; this package never decides a state.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/tcpstate/tcpstate/tracker"
)

// Options shape the output.
type Options struct {
	Names   tracker.Naming
	Verbose bool
	Profile tracker.Profile
	// Now is the instant the states are reported for (end of input or --at).
	Now time.Time
}

// TimeFormat is how times are written in JSON and events (UTC, RFC 3339 with fraction).
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// JSONEndpoint is one endpoint in the JSON output.
type JSONEndpoint struct {
	IP       string `json:"ip"`
	Port     uint16 `json:"port"`
	State    string `json:"state"`
	Inferred bool   `json:"inferred"`
	Evidence string `json:"evidence,omitempty"`
	Since    string `json:"since,omitempty"`
	// TimerLeft: seconds until the current state's timer fires (TIME_WAIT, SYN retries).
	TimerLeft *float64 `json:"timer_left,omitempty"`
}

// JSONDiagnosis details one diagnosis.
type JSONDiagnosis struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	Detail   string `json:"detail"`
}

// JSONConn is one line of -o json (SPEC field names).
type JSONConn struct {
	ID        uint64          `json:"id"`
	Client    JSONEndpoint    `json:"client"`
	Server    JSONEndpoint    `json:"server"`
	FirstSeen string          `json:"first_seen"`
	LastSeen  string          `json:"last_seen"`
	Packets   uint64          `json:"packets"`
	Bytes     uint64          `json:"bytes"`
	Diagnoses []string        `json:"diagnoses"`
	Details   []JSONDiagnosis `json:"diagnosis_details,omitempty"`
	Zeek      JSONZeek        `json:"zeek"`
	Midstream bool            `json:"midstream,omitempty"`
	Reuses    uint64          `json:"reuses,omitempty"`
	ReusedBy  uint64          `json:"reused_by,omitempty"`
	Tunnel    *JSONTunnel     `json:"tunnel,omitempty"`
	Profile   string          `json:"os_profile"`
}

// JSONZeek holds Zeek's labels for the connection.
type JSONZeek struct {
	ConnState string `json:"conn_state"`
	History   string `json:"history"`
}

// JSONTunnel names the encapsulation a connection was carried in.
type JSONTunnel struct {
	Kind string `json:"kind"`
	Src  string `json:"src"`
	Dst  string `json:"dst"`
}

func endpointJSON(ep *tracker.Endpoint, now time.Time) JSONEndpoint {
	j := JSONEndpoint{IP: ep.Addr.Addr().String(), Port: ep.Addr.Port(), State: ep.State.String(),
		Inferred: ep.Inferred, Evidence: ep.Evidence, Since: ts(ep.Since)}
	if !ep.Deadline.IsZero() && ep.Deadline.After(now) {
		left := ep.Deadline.Sub(now).Seconds()
		j.TimerLeft = &left
	}
	return j
}

// ConnJSON converts a connection to its JSON form.
func ConnJSON(c *tracker.Conn, o *Options) JSONConn {
	j := JSONConn{ID: c.ID, Client: endpointJSON(&c.Client, o.Now), Server: endpointJSON(&c.Server, o.Now),
		FirstSeen: ts(c.FirstSeen), LastSeen: ts(c.LastSeen), Packets: c.Packets, Bytes: c.Bytes,
		Diagnoses: []string{}, Zeek: JSONZeek{ConnState: c.Zeek.ConnState(), History: c.Zeek.History},
		Midstream: c.Midstream, Reuses: c.Reuses, ReusedBy: c.ReusedBy, Profile: o.Profile.Name}
	for _, d := range c.Diagnoses {
		j.Diagnoses = append(j.Diagnoses, d.ID)
		j.Details = append(j.Details, JSONDiagnosis{ID: d.ID, Endpoint: d.Side.String(), Detail: d.Detail})
	}
	if c.TunnelSrc != "" {
		j.Tunnel = &JSONTunnel{Kind: TunnelName(c.Tunnel), Src: c.TunnelSrc, Dst: c.TunnelDst}
	}
	return j
}

// WriteJSON writes one JSON object per connection, in order of first packet.
func WriteJSON(w io.Writer, conns []*tracker.Conn, o *Options) error {
	enc := json.NewEncoder(w)
	for _, c := range conns {
		if err := enc.Encode(ConnJSON(c, o)); err != nil {
			return err
		}
	}
	return nil
}

// AddrPort writes an address the way ss does: IPv6 in brackets.
func AddrPort(a netip.AddrPort) string {
	if a.Addr().Is6() && !a.Addr().Is4In6() {
		return fmt.Sprintf("[%s]:%d", a.Addr(), a.Port())
	}
	return fmt.Sprintf("%s:%d", a.Addr(), a.Port())
}

// severity orders connections problems first: the most serious diagnosis decides.
func severity(c *tracker.Conn) int {
	best := len(tracker.AllDiagnoses) + 1
	for _, d := range c.Diagnoses {
		if !tracker.Problem(d.ID) {
			continue
		}
		for i, id := range tracker.AllDiagnoses {
			if id == d.ID && i < best {
				best = i
			}
		}
	}
	return best
}

// ProblemsFirst returns the connections sorted with problems first, then by id.
func ProblemsFirst(conns []*tracker.Conn) []*tracker.Conn {
	out := append([]*tracker.Conn(nil), conns...)
	sort.SliceStable(out, func(i, j int) bool {
		si, sj := severity(out[i]), severity(out[j])
		if si != sj {
			return si < sj
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func diagList(c *tracker.Conn) string {
	var parts []string
	for _, d := range c.Diagnoses {
		who := d.Side.String()
		parts = append(parts, d.ID+"("+who+")")
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func stateCell(ep *tracker.Endpoint, n tracker.Naming) string {
	s := ep.State.Name(n)
	if ep.Inferred {
		s += "?"
	}
	return s
}

// Summary is what the table's footer and the HTML header count.
type Summary struct {
	Conns       int
	Packets     uint64
	ClientState map[tracker.State]int
	ServerState map[tracker.State]int
	Diagnoses   map[string]int
	Problems    int
}

// Summarize counts states and diagnoses.
func Summarize(conns []*tracker.Conn) Summary {
	s := Summary{ClientState: map[tracker.State]int{}, ServerState: map[tracker.State]int{}, Diagnoses: map[string]int{}}
	for _, c := range conns {
		s.Conns++
		s.Packets += c.Packets
		s.ClientState[c.Client.State]++
		s.ServerState[c.Server.State]++
		problem := false
		for _, d := range c.Diagnoses {
			s.Diagnoses[d.ID]++
			problem = problem || tracker.Problem(d.ID)
		}
		if problem {
			s.Problems++
		}
	}
	return s
}

// WriteTable writes the ss-like table, problems first, then a summary like `ss -s`.
func WriteTable(w io.Writer, conns []*tracker.Conn, o *Options) error {
	rows := [][]string{{"ID", "CLIENT", "STATE", "SERVER", "STATE", "PKTS", "BYTES", "DIAGNOSES"}}
	sorted := ProblemsFirst(conns)
	for _, c := range sorted {
		rows = append(rows, []string{fmt.Sprint(c.ID), AddrPort(c.Client.Addr), stateCell(&c.Client, o.Names),
			AddrPort(c.Server.Addr), stateCell(&c.Server, o.Names), fmt.Sprint(c.Packets), fmt.Sprint(c.Bytes), diagList(c)})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r[:len(r)-1] {
			widths[i] = max(widths[i], len(cell))
		}
	}
	var b strings.Builder
	for ri, r := range rows {
		for i, cell := range r {
			if i == len(r)-1 {
				b.WriteString(cell)
				break
			}
			b.WriteString(cell)
			b.WriteString(strings.Repeat(" ", widths[i]-len(cell)+2))
		}
		b.WriteByte('\n')
		if o.Verbose && ri > 0 {
			writeDetails(&b, sorted[ri-1], o)
		}
	}
	if len(conns) == 0 {
		b.WriteString("(no TCP connections)\n")
	}
	writeSummary(&b, conns, o)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeDetails(b *strings.Builder, c *tracker.Conn, o *Options) {
	for _, side := range []struct {
		name string
		ep   *tracker.Endpoint
	}{{"client", &c.Client}, {"server", &c.Server}} {
		fmt.Fprintf(b, "    %s %s since %s", side.name, side.ep.State.Name(o.Names), ts(side.ep.Since))
		if !side.ep.Deadline.IsZero() && side.ep.Deadline.After(o.Now) {
			fmt.Fprintf(b, ", timer %.1fs left (%s profile)", side.ep.Deadline.Sub(o.Now).Seconds(), o.Profile.Name)
		}
		if side.ep.Inferred {
			fmt.Fprintf(b, "; inferred: %s", side.ep.Evidence)
		}
		b.WriteByte('\n')
	}
	for _, d := range c.Diagnoses {
		fmt.Fprintf(b, "    %s (%s): %s\n", d.ID, d.Side, d.Detail)
	}
	fmt.Fprintf(b, "    zeek %s %s\n", c.Zeek.ConnState(), c.Zeek.History)
}

func writeSummary(b *strings.Builder, conns []*tracker.Conn, o *Options) {
	s := Summarize(conns)
	fmt.Fprintf(b, "\nTotal: %d connections, %d packets, %d with problems (states as of %s; a '?' marks an inferred state)\n",
		s.Conns, s.Packets, s.Problems, ts(o.Now))
	var states []string
	for st := tracker.Closed; st <= tracker.TimeWait; st++ {
		cn, sn := s.ClientState[st], s.ServerState[st]
		if cn+sn > 0 {
			states = append(states, fmt.Sprintf("%s %d/%d", st.Name(o.Names), cn, sn))
		}
	}
	if len(states) > 0 {
		fmt.Fprintf(b, "States (client/server): %s\n", strings.Join(states, ", "))
	}
	var diags []string
	for _, id := range tracker.AllDiagnoses {
		if n := s.Diagnoses[id]; n > 0 {
			diags = append(diags, fmt.Sprintf("%s %d", id, n))
		}
	}
	if len(diags) > 0 {
		fmt.Fprintf(b, "Diagnoses: %s\n", strings.Join(diags, ", "))
	}
}

// WriteEvent writes one state change line.
func WriteEvent(w io.Writer, e *tracker.Event, o *Options) error {
	pkt := "timer"
	if e.Packet > 0 {
		pkt = fmt.Sprintf("packet %d", e.Packet)
		if e.File > 0 {
			pkt = fmt.Sprintf("file %d packet %d", e.File+1, e.Packet)
		}
		pkt += fmt.Sprintf(" [%s] seq %d ack %d", e.Flags, e.Seq, e.Ack)
	}
	_, err := fmt.Fprintf(w, "%s #%d %s %s %s -> %s  %s: %s\n", ts(e.Time), e.ConnID, e.Side, AddrPort(e.Addr),
		e.Old.Name(o.Names), e.New.Name(o.Names), pkt, e.Reason)
	return err
}
