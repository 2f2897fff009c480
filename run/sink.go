package run

import (
	"cmp"
	"slices"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/tracker"
)

// Sink is where a driver's results go: connections as they finish, the clock's ticks with the
// connections still open, and the end. The outputs (the stream of JSON lines or Zeek rows, the
// table, the live view), the metrics and the --fail-on check are sinks; a driver knows none of
// them. A driver calls its sink from one goroutine at a time.
type Sink interface {
	// Finished hands over a connection that is done and about to be forgotten: the file
	// drivers hand every connection this way, in ID order; the live driver those it releases
	// while capturing. c is reused once Finished returns.
	Finished(c *tracker.Conn)
	// Tick: the driver's clock reached open.At (live: once a second of wall time; files: each
	// Config.Every of packet time); open is what the driver still holds.
	Tick(open *Open)
	// End: the input is done. open is what was still tracked, evaluated as of now, in ID order
	// (the live driver's; the file drivers hand every connection to Finished and pass nil).
	End(now time.Time, open []*tracker.Conn)
	// Err is the first error the sink met writing (a live capture stops on it).
	Err() error
}

// Sinks is several sinks as one, called in their order.
type Sinks []Sink

func (s Sinks) Finished(c *tracker.Conn) {
	for _, k := range s {
		k.Finished(c)
	}
}

func (s Sinks) Tick(open *Open) {
	for _, k := range s {
		k.Tick(open)
	}
}

func (s Sinks) End(now time.Time, open []*tracker.Conn) {
	for _, k := range s {
		k.End(now, open)
	}
}

func (s Sinks) Err() error {
	for _, k := range s {
		if err := k.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Open is what a driver holds at a tick: the connections still in its flow tables, and the
// capture's statistics.
type Open struct {
	// At is the instant the connections are evaluated at; Wall, for a live capture, the
	// wall-clock time of the tick (At is LiveConfig.Lag behind it); for files, At.
	At, Wall time.Time
	tables   []*flowtable.Table
	// ticked: the tables were ticked to At (live), so that their own connections are up to
	// date; otherwise (files) each is copied and evaluated apart, leaving the run as it was.
	ticked bool
	// capture: the statistics of the capture as a whole, and per capture socket (nil with one
	// reader).
	capture func() (capture.Stats, []capture.Stats)
}

// Conns is every connection the tables hold, in ID order: a live driver's own (not to be kept
// past the tick); for files, copies of those still open.
func (o *Open) Conns() []*tracker.Conn {
	if !o.ticked {
		var all []*tracker.Conn
		o.Snapshot(func(c *tracker.Conn) { all = append(all, c) })
		return all
	}
	if len(o.tables) == 1 {
		return o.tables[0].Conns()
	}
	var all []*tracker.Conn
	for _, t := range o.tables {
		all = append(all, t.Conns()...)
	}
	slices.SortFunc(all, func(a, b *tracker.Conn) int { return cmp.Compare(a.ID, b.ID) })
	return all
}

// Snapshot hands fn, in ID order, every connection still open at At (fn must not keep them).
func (o *Open) Snapshot(fn func(*tracker.Conn)) {
	if !o.ticked {
		for _, t := range o.tables {
			t.Snapshot(o.At, fn)
		}
		return
	}
	for _, c := range o.Conns() {
		if c.Open() {
			fn(c)
		}
	}
}

// Visit hands fn every connection the tables hold, as of At, in no particular order, maybe
// through one Conn reused (fn must not keep it): what counting them needs.
func (o *Open) Visit(fn func(*tracker.Conn)) {
	for _, t := range o.tables {
		if o.ticked {
			for _, c := range t.Conns() {
				fn(c)
			}
		} else {
			t.Visit(o.At, fn)
		}
	}
}

// Connections is how many connections were seen in all so far.
func (o *Open) Connections() uint64 {
	var n uint64
	for _, t := range o.tables {
		n += t.Stats().Connections
	}
	return n
}

// Capture is the capture's statistics as a whole, and per capture socket when several
// AF_PACKET sockets read it (nil with one reader).
func (o *Open) Capture() (total capture.Stats, perSocket []capture.Stats) {
	return o.capture()
}
