package report

import (
	"sort"

	"github.com/tcpstate/tcpstate/tracker"
)

// The live view's order and column widths (issue 16).

// lasting reports whether c's problem is still going on: an endpoint is still in a state that
// holds a socket (CLOSE_WAIT, a half-open ESTABLISHED, a handshake stuck in SYN_SENT or
// SYN_RECEIVED, a FIN never acknowledged). A connection reset or refused is over: transient.
func lasting(c *tracker.Conn) bool {
	return c.Client.State.Open() || c.Server.State.Open()
}

// liveRank: 0 a lasting problem, 1 a transient one, 2 no problem.
func liveRank(c *tracker.Conn) int {
	switch {
	case severity(c) > len(tracker.AllDiagnoses):
		return 2
	case lasting(c):
		return 0
	}
	return 1
}

// LiveOrder sorts the live view's rows: lasting problems first (the ones someone can still
// act on), then transient ones, then the rest; within each, most serious first, then oldest
// (lowest ID) first.
func LiveOrder(conns []*tracker.Conn) []*tracker.Conn {
	out := append([]*tracker.Conn(nil), conns...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := liveRank(out[i]), liveRank(out[j])
		if ri != rj {
			return ri < rj
		}
		si, sj := severity(out[i]), severity(out[j])
		if si != sj {
			return si < sj
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Columns of the live view's rows: the address columns give way first, then the FOR (age)
// columns, so that DIAGNOSES stays readable on a narrow terminal.
const (
	colClient    = 1
	colClientFor = 3
	colServer    = 4
	colServerFor = 6
	colDiagnoses = 7
	minDiagWidth = 24 // enough for "syn-unanswered(server)"
)

// fitColumns returns the rows and their columns' widths for a terminal width columns wide: when
// the rows would not fit with DIAGNOSES whole, the address cells are shortened (keeping the
// port: "[2001:db8..:59696") down to 15 columns, then the FOR columns go, then the addresses
// shorten down to 10 columns. Rows are changed in place.
func fitColumns(rows [][]string, width int) ([][]string, []int) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			widths[i] = max(widths[i], len(cell))
		}
	}
	diagWant := min(widths[colDiagnoses], max(minDiagWidth, width/3))
	excess := func() int {
		n := 2*(len(widths)-1) - widths[colDiagnoses] + diagWant - width
		for _, w := range widths {
			n += w
		}
		return n
	}
	shrink := func(floor int) {
		for excess() > 0 {
			c := colClient
			if widths[colServer] > widths[colClient] {
				c = colServer
			}
			if widths[c] <= floor {
				return
			}
			widths[c]--
		}
	}
	shrink(15)
	dropFor := excess() > 0
	if dropFor {
		widths[colClientFor], widths[colServerFor] = -2, -2 // gone, with their gaps
		shrink(10)
	}
	for _, r := range rows[1:] {
		for _, c := range []int{colClient, colServer} {
			r[c] = shortenAddr(r[c], widths[c])
		}
	}
	if dropFor {
		for i, r := range rows {
			rows[i] = append(r[:colClientFor:colClientFor], r[colClientFor+1:colServerFor]...)
			rows[i] = append(rows[i], r[colServerFor+1:]...)
		}
		widths = append(widths[:colClientFor:colClientFor], append(widths[colClientFor+1:colServerFor:colServerFor], widths[colServerFor+1:]...)...)
	}
	return rows, widths
}

// shortenAddr fits an address:port cell into n columns, keeping the port and the start of the
// address, with ".." where the middle was.
func shortenAddr(s string, n int) string {
	if len(s) <= n {
		return s
	}
	port := ""
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			port = s[i:]
			break
		}
	}
	head := n - len(port) - 2
	if head < 1 {
		return s[:n]
	}
	return s[:head] + ".." + port
}
