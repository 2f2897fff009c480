package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/tcpstate/tcpstate/report"
	runner "github.com/tcpstate/tcpstate/run"
	"github.com/tcpstate/tcpstate/tracker"
)

// The sinks tcpstate's drivers (package run) write to, the same for files and live capture:
// the output stream (JSON lines, Zeek rows, the table), the --fail-on check, the metrics and
// snapshots (fleet.go), the live view, the events, and the connections kept for --expect and
// --html.

// nopSink is the methods a sink may leave out.
type nopSink struct{}

func (nopSink) Finished(*tracker.Conn)         {}
func (nopSink) Tick(*runner.Open)              {}
func (nopSink) End(time.Time, []*tracker.Conn) {}
func (nopSink) Err() error                     { return nil }

// streamSink writes the connections --state/--problems let through in the output format, as
// they finish, and the rest at the end; it counts them all.
type streamSink struct {
	stream *report.Stream // nil: count only (--html writes at the end)
	cf     *connFilter
	// maxRows bounds the rows of connections finished during a live capture that the final
	// table keeps (0: no bound); unlisted counts those left out.
	maxRows, listed, unlisted uint64
	// Connections, those shown, and those the capture shows one direction of.
	total, shown, oneSided uint64
	// footers, if set, adds the table's last lines at the end.
	footers func(tw *report.TableWriter)
	err     error
}

func (s *streamSink) Finished(c *tracker.Conn) {
	s.total++
	if _, ok := c.OneSided(); ok {
		s.oneSided++
	}
	if !s.cf.keep(c) {
		return
	}
	s.shown++
	if s.stream == nil {
		return
	}
	if s.maxRows > 0 && s.stream.Table() != nil {
		if s.listed >= s.maxRows {
			s.unlisted++
			return
		}
		s.listed++
	}
	s.stream.Conn(c)
}

// Tick sends what was written since the last tick on its way.
func (s *streamSink) Tick(*runner.Open) {
	if s.stream != nil && s.err == nil {
		s.err = s.stream.Flush()
	}
}

// End writes the connections still open and what is left (the table), and flushes.
func (s *streamSink) End(_ time.Time, open []*tracker.Conn) {
	if s.stream == nil {
		return
	}
	for _, c := range s.cf.keepAll(open) {
		s.stream.Conn(c)
	}
	if tw := s.stream.Table(); tw != nil && s.footers != nil {
		s.footers(tw)
	}
	if err := s.stream.Close(); s.err == nil {
		s.err = err
	}
}

func (s *streamSink) Err() error { return s.err }

// failOnSink is --fail-on: the findings of the diagnoses asked for, in every connection.
type failOnSink struct {
	nopSink
	set   map[string]bool
	limit int // findings kept in memory (0: all); n counts them all
	found []string
	n     int
}

func (f *failOnSink) Finished(c *tracker.Conn) {
	for _, d := range c.Diagnoses {
		if f.set[d.ID] || f.set["any"] && tracker.Problem(d.ID) { // any: every problem, not the notes about the capture
			f.n++
			if f.limit == 0 || len(f.found) < f.limit {
				f.found = append(f.found, fmt.Sprintf("  #%d %s -> %s: %s (%s): %s", c.ID,
					report.AddrPort(c.Client.Addr), report.AddrPort(c.Server.Addr), d.ID, d.Side, report.DetailText(c, &d)))
			}
		}
	}
}

// End checks the connections still open at the end.
func (f *failOnSink) End(_ time.Time, open []*tracker.Conn) {
	for _, c := range open {
		f.Finished(c)
	}
}

// failure is the message for exit code 1 ("" when nothing was found).
func (f *failOnSink) failure() string {
	if f == nil || f.n == 0 {
		return ""
	}
	msg := fmt.Sprintf("--fail-on: %d finding(s):\n%s", f.n, strings.Join(f.found, "\n"))
	if f.n > len(f.found) {
		msg += fmt.Sprintf("\n  ... and %d more", f.n-len(f.found))
	}
	return msg
}

// keepSink keeps the connections (or their summaries) that --expect, --expect-init and
// --html look at once the run is done.
type keepSink struct {
	nopSink
	summary bool
	conns   []*tracker.Conn
}

func (k *keepSink) Finished(c *tracker.Conn) {
	if k.summary {
		c = c.Summary()
	}
	k.conns = append(k.conns, c)
}

// heldEvents is -o events with --state or --problems: a connection's events wait until it is
// known to be shown.
type heldEvents struct {
	nopSink
	w     io.Writer
	ropts *report.Options
	cf    *connFilter
	byID  map[uint64][]tracker.Event
}

func (h *heldEvents) event(e tracker.Event) { h.byID[e.ConnID] = append(h.byID[e.ConnID], e) }

func (h *heldEvents) Finished(c *tracker.Conn) {
	if h.cf.keep(c) {
		for i := range h.byID[c.ID] {
			report.WriteEvent(h.w, &h.byID[c.ID][i], h.ropts)
		}
	}
	delete(h.byID, c.ID)
}

// liveEvents is -o events in live capture: each event written as it happens, from the workers'
// goroutines one at a time.
type liveEvents struct {
	nopSink
	mu    sync.Mutex
	out   *bufio.Writer
	ropts *report.Options
	err   error
}

func (e *liveEvents) event(ev tracker.Event) {
	e.mu.Lock()
	report.WriteEvent(e.out, &ev, e.ropts)
	if err := e.out.Flush(); err != nil && e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

func (e *liveEvents) Err() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// viewSink is the live view on a terminal, redrawn at each tick.
type viewSink struct {
	view    report.LiveView
	term    *os.File
	out     *bufio.Writer
	ropts   *report.Options
	cf      *connFilter
	status  report.LiveStatus
	entered bool
	err     error
}

func (v *viewSink) Finished(c *tracker.Conn) {
	v.status.Finished++
	for _, d := range c.Diagnoses {
		v.status.FinishedDiagnoses[d.ID]++
	}
}

// Tick redraws the view, sized to the terminal as it is now.
func (v *viewSink) Tick(open *runner.Open) {
	if !v.entered {
		v.entered = true
		v.status.Started = open.Wall
		io.WriteString(v.out, report.LiveEnter)
	}
	v.view.Width, v.view.Height = termSize(v.term)
	st, per := open.Capture()
	v.status.Now = open.Wall
	v.status.Packets, v.status.KernelDropped, v.status.IfaceDropped = st.Packets, st.KernelDropped, st.IfaceDropped
	v.status.WorkerDrops = nil
	if per != nil {
		v.status.WorkerDrops = make([]uint64, len(per))
		for i, p := range per {
			v.status.WorkerDrops[i] = p.KernelDropped
		}
	}
	if v.ropts.Now.IsZero() {
		v.ropts.Now = open.Wall
	}
	if err := v.view.Frame(v.out, v.cf.keepAll(open.Conns()), &v.status, v.ropts); err != nil && v.err == nil {
		v.err = err
	}
	v.flush()
}

// End leaves the view: the final table is written on the terminal as it was.
func (v *viewSink) End(time.Time, []*tracker.Conn) {
	io.WriteString(v.out, report.LiveLeave)
	v.flush()
}

func (v *viewSink) flush() {
	if err := v.out.Flush(); err != nil && v.err == nil {
		v.err = err
	}
}

func (v *viewSink) Err() error { return v.err }
