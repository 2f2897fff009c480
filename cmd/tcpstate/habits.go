package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/tcpstate/tcpstate/tracker"
)

// tcpdump and ss habits (issue 16): -F, --state, --problems.

// readFilterFile is -F FILE: the filter expression comes from the file, as with tcpdump, and
// '#' starts a comment that runs to the end of the line.
func (o *options) readFilterFile() error {
	if o.filterFile == "" {
		return nil
	}
	if o.filter != "" {
		return usageErr("-F %s and a filter expression on the command line (%q): give the filter one way, not both", o.filterFile, o.filter)
	}
	data, err := os.ReadFile(o.filterFile)
	if err != nil {
		return usageErr("-F: %v", err)
	}
	var words []string
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		words = append(words, strings.Fields(line)...)
	}
	if len(words) == 0 {
		return usageErr("-F %s: the file holds no filter expression (only blank lines or comments)", o.filterFile)
	}
	o.filter = strings.Join(words, " ")
	return nil
}

// connFilter is --state and --problems: which connections are written. Nil keeps all.
type connFilter struct {
	states   [16]bool // by tracker.State
	anyState bool
	problems bool
}

// ss's state groups, accepted by --state as ss -t state accepts them.
var stateGroups = map[string][]tracker.State{
	"connected":    {tracker.SynSent, tracker.SynReceived, tracker.Established, tracker.FinWait1, tracker.FinWait2, tracker.CloseWait, tracker.Closing, tracker.LastAck, tracker.TimeWait},
	"synchronized": {tracker.Established, tracker.FinWait1, tracker.FinWait2, tracker.CloseWait, tracker.Closing, tracker.LastAck, tracker.TimeWait},
	"bucket":       {tracker.SynReceived, tracker.TimeWait},
}

func parseConnFilter(states string, problems bool) (*connFilter, error) {
	if states == "" && !problems {
		return nil, nil
	}
	f := &connFilter{problems: problems}
	for _, name := range strings.Split(states, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if g, ok := stateGroups[strings.ToLower(name)]; ok {
			for _, s := range g {
				f.states[s] = true
			}
			f.anyState = true
			continue
		}
		s, err := tracker.ParseState(name)
		if err != nil {
			return nil, usageErr("--state: %v; any naming works (CLOSE_WAIT, close-wait, CLOSE-WAIT, ESTAB, SYN_RCVD), and ss's groups connected, synchronized, bucket", err)
		}
		f.states[s] = true
		f.anyState = true
	}
	return f, nil
}

// keep reports whether c is written: an endpoint in one of the states (as reported, after
// timers), and, with --problems, a diagnosis that is a problem (tracker.Problem).
func (f *connFilter) keep(c *tracker.Conn) bool {
	if f == nil {
		return true
	}
	if f.anyState && !f.states[c.Client.State&15] && !f.states[c.Server.State&15] {
		return false
	}
	if f.problems {
		for _, d := range c.Diagnoses {
			if tracker.Problem(d.ID) {
				return true
			}
		}
		return false
	}
	return true
}

// keepAll filters a list of connections (nil filter: the list itself).
func (f *connFilter) keepAll(conns []*tracker.Conn) []*tracker.Conn {
	if f == nil {
		return conns
	}
	var out []*tracker.Conn
	for _, c := range conns {
		if f.keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// describe says what the filter kept, for the table's footer.
func (f *connFilter) describe(o *options, kept, total int) string {
	return fmt.Sprintf("Shown: %d of %d connections (%s)", kept, total, f.flags(o))
}

func (f *connFilter) flags(o *options) string {
	var what []string
	if o.states != "" {
		what = append(what, "--state "+o.states)
	}
	if o.problems {
		what = append(what, "--problems")
	}
	return strings.Join(what, " ")
}

// none says that the filter kept nothing.
func (f *connFilter) none(o *options, total int) string {
	return fmt.Sprintf("No connection to show: none of the %d connections matches %s", total, f.flags(o))
}
