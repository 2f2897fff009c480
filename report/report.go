// Package report holds every word a user reads about what the tracker found: the ss-like
// table, JSON lines, events, Zeek conn.log rows, the HTML report, the live view and --expect's
// findings, and (words.go) every sentence of a diagnosis, of why a state is inferred, of why an
// endpoint changed state, of how a connection ended and of what a RST's receiver made of it,
// written from the kinds and facts the tracker hands over. The tracker writes no words; this
// package decides no state.
package report

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcpstate/tcpstate/tracker"
	"github.com/tcpstate/tcpstate/zeek"
)

// Options shape the output.
type Options struct {
	Names   tracker.Naming
	Verbose bool
	Profile tracker.Profile
	// Now is the instant the states are reported for (end of input or --at).
	Now time.Time
	// NoSummary leaves the table's summary and footer lines out (-q): rows only.
	NoSummary bool
}

// TimeFormat is how times are written in JSON and events (UTC, RFC 3339 with fraction).
const TimeFormat = "2006-01-02T15:04:05.000000Z07:00"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(TimeFormat)
}

// asOf is the instant c's timers are counted from: when it was evaluated (a streaming run may
// finish a connection before the end), else the report's instant.
func asOf(c *tracker.Conn, o *Options) time.Time {
	if c.Evicted || c.TimedOut {
		return c.AsOf
	}
	return o.Now
}

// WriteJSON writes one JSON object per connection, in order of first packet.
func WriteJSON(w io.Writer, conns []*tracker.Conn, o *Options) error {
	j := NewJSONLine(o)
	var b []byte
	for _, c := range conns {
		b = j.Append(b[:0], c)
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// AddrPort writes an address the way ss does: IPv6 in brackets.
func AddrPort(a netip.AddrPort) string {
	if a.Addr().Is6() {
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

// diagList is the DIAGNOSES cell: the problems, then in brackets the notes (about the capture,
// such as midstream and capture-gap, or the 4-tuple), which are not problems.
func diagList(c *tracker.Conn) string {
	var parts, notes []string
	for _, d := range c.Diagnoses {
		cell := d.ID + "(" + d.Side.String() + ")"
		if tracker.Problem(d.ID) {
			parts = append(parts, cell)
		} else {
			notes = append(notes, "["+cell+"]")
		}
	}
	parts = append(parts, notes...)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func stateCell(ep *tracker.Endpoint, n tracker.Naming) string {
	s := ep.StateName(n)
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
	// Evicted and TimedOut count connections a streaming run finished early (--max-flows,
	// the idle timeout).
	Evicted, TimedOut int
	// ZeekRowsDropped counts conn.log rows left out beyond zeek.MaxRows per connection.
	ZeekRowsDropped uint64
}

// Summarize counts states and diagnoses.
func Summarize(conns []*tracker.Conn) Summary {
	s := newSummary()
	for _, c := range conns {
		s.Add(c)
	}
	return s
}

func newSummary() Summary {
	return Summary{ClientState: map[tracker.State]int{}, ServerState: map[tracker.State]int{}, Diagnoses: map[string]int{}}
}

// Add counts one connection.
func (s *Summary) Add(c *tracker.Conn) {
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
	if c.Evicted {
		s.Evicted++
	}
	if c.TimedOut {
		s.TimedOut++
	}
	s.ZeekRowsDropped += c.Zeek.RowsDropped
}

// WriteTable writes the ss-like table, problems first, then a summary like `ss -s`.
func WriteTable(w io.Writer, conns []*tracker.Conn, o *Options) error {
	tw := NewTableWriter(o)
	for _, c := range conns {
		tw.Add(c)
	}
	return tw.Write(w)
}

// TableWriter builds the table from connections given one at a time (in ID order), keeping
// only each one's row, so that a streaming run need not keep the connections themselves: the
// table sorts problems first, so it can only be written once every row is in.
type TableWriter struct {
	o       *Options
	rows    []tableRow
	sum     Summary
	widths  [7]int
	Footers []string // extra lines after the summary
	// Empty, if set, is written instead of the table when it has no rows: why there is
	// nothing to show (no packets, a filter that matched none).
	Empty string
}

// tableRow is one connection's row: its cells joined by tabs (and, with -v, its details).
type tableRow struct {
	cells    string
	details  string
	severity int32
}

var tableHeader = [8]string{"ID", "CLIENT", "STATE", "SERVER", "STATE", "PKTS", "BYTES", "DIAGNOSES"}

// NewTableWriter returns an empty table.
func NewTableWriter(o *Options) *TableWriter {
	tw := &TableWriter{o: o, sum: newSummary()}
	for i := range tw.widths {
		tw.widths[i] = len(tableHeader[i])
	}
	return tw
}

// Add adds c's row. c is not kept.
func (tw *TableWriter) Add(c *tracker.Conn) {
	o := tw.o
	cells := [8]string{strconv.FormatUint(c.ID, 10), AddrPort(c.Client.Addr), stateCell(&c.Client, o.Names),
		AddrPort(c.Server.Addr), stateCell(&c.Server, o.Names), strconv.FormatUint(c.Packets, 10),
		strconv.FormatUint(c.Bytes, 10), diagList(c)}
	for i := range tw.widths {
		tw.widths[i] = max(tw.widths[i], len(cells[i]))
	}
	r := tableRow{cells: strings.Join(cells[:], "\t"), severity: int32(severity(c))}
	if o.Verbose {
		var b strings.Builder
		writeDetails(&b, c, o)
		r.details = b.String()
	}
	tw.rows = append(tw.rows, r)
	tw.sum.Add(c)
}

// Write writes the table: problems first (then by ID), and the summary.
func (tw *TableWriter) Write(w io.Writer) error {
	sort.SliceStable(tw.rows, func(i, j int) bool { return tw.rows[i].severity < tw.rows[j].severity })
	bw := bufio.NewWriterSize(w, 64<<10)
	if len(tw.rows) == 0 && tw.Empty != "" {
		bw.WriteString(tw.Empty + "\n")
		return bw.Flush()
	}
	line := func(cells []string) {
		for i, cell := range cells {
			bw.WriteString(cell)
			if i == len(cells)-1 {
				break
			}
			for range tw.widths[i] - len(cell) + 2 {
				bw.WriteByte(' ')
			}
		}
		bw.WriteByte('\n')
	}
	line(tableHeader[:])
	var cells [8]string
	for _, r := range tw.rows {
		rest := r.cells
		for i := range cells {
			cells[i], rest, _ = strings.Cut(rest, "\t")
		}
		line(cells[:])
		bw.WriteString(r.details)
	}
	if len(tw.rows) == 0 {
		bw.WriteString("(no TCP connections)\n")
	}
	if tw.o.NoSummary {
		return bw.Flush()
	}
	var b strings.Builder
	writeSummary(&b, &tw.sum, tw.o)
	for _, f := range tw.Footers {
		b.WriteString(f + "\n")
	}
	bw.WriteString(b.String())
	return bw.Flush()
}

func writeDetails(b *strings.Builder, c *tracker.Conn, o *Options) {
	for _, side := range []struct {
		name string
		ep   *tracker.Endpoint
	}{{"client", &c.Client}, {"server", &c.Server}} {
		fmt.Fprintf(b, "    %s %s since %s", side.name, side.ep.StateName(o.Names), ts(side.ep.Since))
		if now := asOf(c, o); !side.ep.Deadline.IsZero() && side.ep.Deadline.After(now) {
			fmt.Fprintf(b, ", timer %.1fs left (%s profile)", side.ep.Deadline.Sub(now).Seconds(), o.Profile.Name)
		}
		if side.ep.Inferred {
			fmt.Fprintf(b, "; inferred: %s", EvidenceText(&side.ep.Evidence))
		}
		b.WriteByte('\n')
	}
	for i := range c.Diagnoses {
		d := &c.Diagnoses[i]
		fmt.Fprintf(b, "    %s (%s): %s\n", d.ID, d.Side, DetailText(c, d))
	}
	switch {
	case c.Evicted:
		fmt.Fprintf(b, "    evicted from the full table (--max-flows) before it finished: states as of %s\n", ts(c.AsOf))
	case c.TimedOut:
		fmt.Fprintf(b, "    timed out (silent too long) before the end: states as of %s\n", ts(c.AsOf))
	}
	fmt.Fprintf(b, "    zeek %s %s\n", c.Zeek.ConnState(), c.Zeek.History)
}

func writeSummary(b *strings.Builder, s *Summary, o *Options) {
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
	if d := ProblemCounts(s.Diagnoses); d != "" {
		fmt.Fprintf(b, "Diagnoses: %s\n", d)
	}
	if d := NoteCounts(s.Diagnoses); d != "" {
		fmt.Fprintf(b, "Notes, not problems (in [brackets] above): %s\n", d)
	}
	if s.Evicted > 0 {
		fmt.Fprintf(b, "Evicted: %d connection(s) dropped from the full table (--max-flows) before they finished, reported as they stood then\n", s.Evicted)
	}
	if s.TimedOut > 0 {
		fmt.Fprintf(b, "Timed out: %d connection(s) silent for the idle timeout, reported as they stood then\n", s.TimedOut)
	}
	if s.ZeekRowsDropped > 0 {
		fmt.Fprintf(b, "Zeek rows: %d conn.log row(s) left out, on 4-tuples that made more than %d each (hostile or looping traffic); -o zeek keeps each one's first and latest rows\n",
			s.ZeekRowsDropped, zeek.MaxRows)
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
		e.Old.Name(o.Names), e.New.Name(o.Names), pkt, ReasonText(e))
	return err
}
