package run

import (
	"sync/atomic"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/tracker"
)

// The live driver: capture, track and report at once. The flow tables still read no clock:
// the driver hands them wall-clock time once a tick (flowtable.Table.Tick), so timers run out
// while the wire is silent, and hands its sink and forgets the connections that finished
// (Release), so memory follows the number of connections open at once, not how long the
// capture runs.

// Defaults of LiveConfig.
const (
	// DefaultRefresh is the tick: timers, finished connections, the sinks (view, metrics).
	DefaultRefresh = time.Second
	// DefaultLag keeps ticks behind the packets still in flight: libpcap hands packets over
	// up to one read timeout after their kernel timestamp, and a tick must not evaluate a
	// connection at an instant before a packet it has yet to see.
	DefaultLag = 2*capture.DefaultReadTimeout + 50*time.Millisecond
	// DefaultQuiet is how long a connection closed at both ends stays in the table before it
	// is handed to the sink and forgotten: a straggler (a segment that crossed a RST, a late
	// retransmission) still finds it.
	DefaultQuiet = 10 * time.Second
)

// LiveSource is what the live driver reads with one reader: a *capture.Live, or a stand-in in
// tests.
type LiveSource interface {
	Poll(seg *capture.Segment) (got, open bool)
	Stop()
	Stats() capture.Stats
	Errs() []*capture.ReadError
	// Flush writes out what the source saves (-w), once a tick and at the end.
	Flush() error
}

// LiveConfig sets up a live run.
type LiveConfig struct {
	// Config is the flow tables' setup (no Stream: the live driver releases connections
	// itself). With several workers, OnEvent is called from their goroutines, one at a time
	// per table: it must take a lock of its own if it writes where others do.
	flowtable.Config
	// Refresh, Lag and Quiet: zero means DefaultRefresh, DefaultLag, DefaultQuiet.
	Refresh, Lag, Quiet time.Duration
	// OnClock, if set, is called with each instant the connections are evaluated at (each
	// tick's, and the end's), before any of them is handed to the sink.
	OnClock func(at time.Time)
}

// Live is one live capture being tracked: NewLive (one reader) or NewFanout (AF_PACKET
// sockets, a table each), then Run.
type Live struct {
	cfg  LiveConfig
	sink Sink
	src  LiveSource // one reader; with workers, the sockets as one (fanoutSource)
	// tables: one, fed by Run's loop; with workers, shards[i].tr each.
	tables []*flowtable.Table
	shards []*liveShard // nil with one reader

	due      atomic.Bool // a tick is due: set by the ticker's goroutine and Poke
	finished atomic.Uint64
	now      time.Time // the instant the connections were evaluated at last
	flushErr error     // the first error saving the capture (Flush)
}

// NewLive sets up a live run reading src, handing its results to sink.
func NewLive(cfg LiveConfig, src LiveSource, sink Sink) *Live {
	l := newLive(cfg, sink)
	l.src = src
	l.tables = []*flowtable.Table{flowtable.New(l.cfg.Config)}
	return l
}

func newLive(cfg LiveConfig, sink Sink) *Live {
	if cfg.Refresh == 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.Lag == 0 {
		cfg.Lag = DefaultLag
	}
	if cfg.Quiet == 0 {
		cfg.Quiet = DefaultQuiet
	}
	cfg.Stream = nil
	return &Live{cfg: cfg, sink: sink}
}

// Tables is the run's flow tables: one, or one per AF_PACKET socket. They are the driver's:
// touch them only before Run, or from a test that drives the clock itself with Refresh.
func (l *Live) Tables() []*flowtable.Table { return l.tables }

// Poke makes a tick come at the next turn of the capture loop rather than at the next
// Refresh (a resized terminal redraws now); any goroutine.
func (l *Live) Poke() { l.due.Store(true) }

// Stop ends the capture; any goroutine. Run then finishes and returns.
func (l *Live) Stop() { l.src.Stop() }

// Finished is how many connections were handed to the sink as finished so far; any goroutine.
func (l *Live) Finished() uint64 { return l.finished.Load() }

// Run captures until the source ends (Stop, a count, an error, a sink's error), then
// evaluates what is still open as of then (the wall clock, or the latest packet if later) and
// hands it to the sink's End. It returns the first error flushing the source (Flush).
func (l *Live) Run() error {
	start := time.Now()
	l.sink.Tick(l.open(start.Add(-l.cfg.Lag), start))
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(l.cfg.Refresh)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.due.Store(true)
			case <-done:
				return
			}
		}
	}()
	if l.shards != nil {
		l.runShards()
	} else {
		var seg capture.Segment
		tr := l.tables[0]
		for {
			got, open := l.src.Poll(&seg)
			if got {
				tr.Add(&seg)
			}
			if !open {
				break
			}
			l.poll()
		}
	}
	l.finish()
	return l.flushErr
}

// poll ticks if a tick is due, and stops the capture once a sink could not write.
func (l *Live) poll() {
	if l.due.Swap(false) {
		l.Refresh(time.Now())
	}
	if l.sink.Err() != nil || l.flushErr != nil {
		l.src.Stop()
	}
}

// Refresh is one tick at wall-clock time now: the timers run to now less the lag, finished
// connections go to the sink and are forgotten, the source saves what it holds, and the sink
// ticks. Run calls it once a Refresh; a test may drive the clock itself.
func (l *Live) Refresh(now time.Time) {
	at := now.Add(-l.cfg.Lag)
	l.lockAll()
	defer l.unlockAll()
	for _, tr := range l.tables {
		tr.Tick(at)
	}
	l.clock(at)
	for _, tr := range l.tables {
		tr.Release(at, l.cfg.Quiet, l.release)
	}
	if err := l.src.Flush(); err != nil && l.flushErr == nil {
		l.flushErr = err
	}
	l.sink.Tick(l.open(at, now))
}

func (l *Live) clock(at time.Time) {
	l.now = at
	if l.cfg.OnClock != nil {
		l.cfg.OnClock(at)
	}
}

func (l *Live) release(c *tracker.Conn) {
	l.finished.Add(1)
	l.sink.Finished(c)
}

// open is what the sink sees at a tick.
func (l *Live) open(at, wall time.Time) *Open {
	return &Open{At: at, Wall: wall, tables: l.tables, ticked: true, capture: l.captureStats}
}

// finish evaluates what is still open as of now and hands it to the sink.
func (l *Live) finish() {
	now := time.Now()
	for _, tr := range l.tables {
		if tr.Now.After(now) {
			now = tr.Now
		}
	}
	for _, tr := range l.tables {
		tr.Finish(now)
	}
	l.clock(now)
	open := (&Open{tables: l.tables, ticked: true}).Conns()
	l.sink.End(now, open)
	if err := l.src.Flush(); err != nil && l.flushErr == nil {
		l.flushErr = err
	}
}

// LiveStats is what a live run saw.
type LiveStats struct {
	capture.Stats
	// PerSocket: the capture's statistics per AF_PACKET socket (nil with one reader).
	PerSocket []capture.Stats
	// Connections seen in all, and those finished (and handed out) during the capture.
	Connections, Finished uint64
	// Now is the instant the connections were evaluated at last (at the end: the final
	// report's).
	Now time.Time
}

// Stats is what the run saw: call it once Run has returned.
func (l *Live) Stats() LiveStats {
	st := LiveStats{Finished: l.Finished(), Now: l.now}
	st.Stats, st.PerSocket = l.captureStats()
	st.Connections = (&Open{tables: l.tables}).Connections()
	return st
}

// captureStats is the capture's statistics, whole and per socket (call it with the shards held:
// see Refresh, or once they have ended).
func (l *Live) captureStats() (capture.Stats, []capture.Stats) {
	if l.shards == nil {
		return l.src.Stats(), nil
	}
	per := make([]capture.Stats, len(l.shards))
	var st capture.Stats
	for i, sh := range l.shards {
		c := sh.counts
		c.KernelDropped = sh.src.KernelDropped()
		per[i] = c
		st.Packets += c.Packets
		st.Bytes += c.Bytes
		st.TCP += c.TCP
		st.NonTCP += c.NonTCP
		st.Fragments += c.Fragments
		st.Truncated += c.Truncated
		st.KernelDropped += c.KernelDropped
	}
	return st, per
}

// Errs is the errors the capture met reading.
func (l *Live) Errs() []*capture.ReadError { return l.src.Errs() }

// lockAll and unlockAll hold every shard still (nothing with one reader).
func (l *Live) lockAll() {
	for _, sh := range l.shards {
		sh.mu.Lock()
	}
}

func (l *Live) unlockAll() {
	for _, sh := range l.shards {
		sh.mu.Unlock()
	}
}
