package report

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tcpstate/tcpstate/tracker"
)

// The live view: what `tcpstate -i IFACE` shows on a terminal, redrawn in place every second
// like top. Plain ANSI escape sequences (VT100/xterm), understood by every terminal in use.

// Terminal control sequences around the live view: an alternate screen with the cursor
// hidden, so that leaving it gives the user's scrollback back, as top and less do.
const (
	LiveEnter = "\x1b[?1049h\x1b[?25l"
	LiveLeave = "\x1b[?25h\x1b[?1049l"
)

const (
	ansiHome      = "\x1b[H"
	ansiClearLine = "\x1b[K"
	ansiClearDown = "\x1b[J"
	ansiBold      = "\x1b[1m"
	ansiReverse   = "\x1b[7m"
	ansiRed       = "\x1b[31m"
	ansiYellow    = "\x1b[33m"
	ansiReset     = "\x1b[0m"
)

// LiveStatus is what the view's header says about the capture itself.
type LiveStatus struct {
	Interface string
	Filter    string
	Started   time.Time
	Now       time.Time // wall clock
	// Packets captured, and dropped before they could be (pcap statistics).
	Packets       uint64
	KernelDropped uint64
	IfaceDropped  uint64
	// Finished connections already written out and forgotten, and their diagnoses.
	Finished          uint64
	FinishedDiagnoses map[string]int
	// WorkerDrops: with several AF_PACKET sockets, the kernel's drops for each (nil: one
	// libpcap reader).
	WorkerDrops []uint64
}

// LiveView draws frames of the view for a terminal of Width columns and Height rows.
type LiveView struct {
	Width, Height int
	Color         bool
}

// Frame draws one frame: the header, then as many connections as fit, problems first. It
// writes the whole frame in one Write so the terminal never shows half of one.
func (v *LiveView) Frame(w io.Writer, conns []*tracker.Conn, st *LiveStatus, o *Options) error {
	width, height := v.Width, v.Height
	if width < 40 {
		width = 40
	}
	if height < 8 {
		height = 8
	}
	var lines []string
	var styles []string

	add := func(style, s string) {
		lines = append(lines, s)
		styles = append(styles, style)
	}
	// Header lines wrap at their commas rather than lose their end.
	addWrapped := func(s string) {
		for len(s) > width {
			cut := strings.LastIndex(s[:width], ", ")
			if cut <= 0 {
				break
			}
			add("", s[:cut+1])
			s = "    " + s[cut+2:]
		}
		add("", s)
	}
	title := "tcpstate -i " + st.Interface
	if st.Filter != "" {
		title += " '" + st.Filter + "'"
	}
	clock := st.Now.Local().Format("15:04:05") + "  up " + LiveAge(st.Now.Sub(st.Started))
	add(ansiBold, padBetween(title, clock, width))
	s := Summarize(conns)
	packets := fmt.Sprintf("packets: %d captured, %d dropped by kernel, %d dropped by interface", st.Packets, st.KernelDropped, st.IfaceDropped)
	if st.WorkerDrops != nil {
		packets = fmt.Sprintf("packets: %d captured, %d dropped by kernel (per socket: %s), %d dropped by interface", st.Packets, st.KernelDropped, JoinCounts(st.WorkerDrops), st.IfaceDropped)
	}
	connections := fmt.Sprintf("connections: %d tracked, %d finished", s.Conns, st.Finished)
	if len(packets)+3+len(connections) <= width {
		add("", packets+"   "+connections)
	} else {
		add("", packets)
		add("", connections)
	}
	problems := "problems: "
	if d := ProblemCounts(s.Diagnoses); d != "" {
		problems += d
	} else {
		problems += "none"
	}
	if d := ProblemCounts(st.FinishedDiagnoses); d != "" {
		problems += "   finished: " + d
	}
	addWrapped(problems)
	if d := NoteCounts(s.Diagnoses); d != "" {
		addWrapped("notes (not problems): " + d)
	}
	var states []string
	for state := tracker.Closed; state <= tracker.TimeWait; state++ {
		cn, sn := s.ClientState[state], s.ServerState[state]
		if cn+sn > 0 {
			states = append(states, fmt.Sprintf("%s %d/%d", state.Name(o.Names), cn, sn))
		}
	}
	if len(states) == 0 {
		states = append(states, "-")
	}
	addWrapped("states (client/server): " + strings.Join(states, ", "))
	add("", "")
	if limit := height - 2; len(lines) > limit {
		// A small terminal: keep the column header and one line under it at least.
		lines, styles = lines[:limit], styles[:limit]
	}

	rows := [][]string{{"ID", "CLIENT", "STATE", "FOR", "SERVER", "STATE", "FOR", "DIAGNOSES"}}
	room := height - len(lines) - 1 // rows left under the column header
	sorted := LiveOrder(conns)
	shown := sorted
	more := 0
	if len(sorted) > room {
		keep := max(room-1, 0) // the last row says how many more there are
		shown, more = sorted[:keep], len(sorted)-keep
	}
	rowStyle := []string{ansiReverse}
	for _, c := range shown {
		rows = append(rows, []string{fmt.Sprint(c.ID),
			AddrPort(c.Client.Addr), stateCell(&c.Client, o.Names), LiveAge(o.Now.Sub(c.Client.Since)),
			AddrPort(c.Server.Addr), stateCell(&c.Server, o.Names), LiveAge(o.Now.Sub(c.Server.Since)),
			diagList(c)})
		style := ""
		switch sev := severity(c); {
		case sev <= 3: // refused, syn-unanswered, handshake-incomplete, reset
			style = ansiRed
		case sev < len(tracker.AllDiagnoses)+1:
			style = ansiYellow
		}
		rowStyle = append(rowStyle, style)
	}
	rows, widths := fitColumns(rows, width)
	for ri, r := range rows {
		var b strings.Builder
		for i, cell := range r {
			b.WriteString(cell)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-len(cell)+2))
			}
		}
		add(rowStyle[ri], b.String())
	}
	if len(conns) == 0 {
		add("", "(no TCP connections yet)")
	}
	if more > 0 {
		add("", fmt.Sprintf("... and %d more connections", more))
	}

	var b strings.Builder
	b.WriteString(ansiHome)
	for i, line := range lines {
		line = fit(line, width)
		if v.Color && styles[i] != "" && line != "" {
			b.WriteString(styles[i] + line + ansiReset)
		} else {
			b.WriteString(line)
		}
		b.WriteString(ansiClearLine)
		if i < len(lines)-1 {
			b.WriteString("\r\n")
		}
	}
	b.WriteString(ansiClearDown)
	_, err := io.WriteString(w, b.String())
	return err
}

// padBetween puts left at the start and right at the end of a line of width columns.
func padBetween(left, right string, width int) string {
	gap := width - len(left) - len(right)
	if gap < 2 {
		return left + "  " + right
	}
	return left + strings.Repeat(" ", gap) + right
}

// fit cuts a line to the terminal width (the view writes ASCII only).
func fit(s string, width int) string {
	if len(s) > width {
		return s[:width]
	}
	return s
}

// LiveAge writes a duration the way top and ps do: short, coarser as it grows.
func LiveAge(d time.Duration) string {
	switch {
	case d < 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// JoinCounts writes counts as "3 0 12" (the kernel drops of each capture socket).
func JoinCounts(counts []uint64) string {
	parts := make([]string, len(counts))
	for i, n := range counts {
		parts[i] = fmt.Sprint(n)
	}
	return strings.Join(parts, " ")
}
