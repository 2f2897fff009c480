package main

import (
	"fmt"
	"io"
	"time"

	runner "github.com/tcpstate/tcpstate/run"

	"github.com/spf13/pflag"
	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/metrics"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/tracker"
)

// Running on every sensor of a fleet: a Prometheus endpoint (--metrics) and records of the
// connections still open at intervals (--snapshot-every), in live capture and in long -r runs.

func addFleetFlags(fs *pflag.FlagSet, o *options) {
	fs.StringVar(&o.metricsAddr, "metrics", "", "serve Prometheus metrics at http://`ADDR`/metrics (e.g. :9917 or 127.0.0.1:9917); with -i, or -r for long runs")
	fs.StringVar(&o.metricsPorts, "metrics-ports", "", "with --metrics, also break the figures down by these server `PORTS` (e.g. 443,5432)")
	fs.DurationVar(&o.snapshotEvery, "snapshot-every", 0, "with -o json, also write each connection still open every `DURATION` (e.g. 1m; packet time with -r), marked \"snapshot\": true")
}

// fleet is what --metrics and --snapshot-every add to a run: a sink (run.Sink) that counts
// finished connections, and at each tick refreshes the gauges and writes the snapshots due.
type fleet struct {
	nopSink
	o      *options
	coll   *metrics.Collector // nil without --metrics
	srv    *metrics.Server
	snap   *report.SnapshotJSON // nil without --snapshot-every
	stream *report.Stream       // where snapshots go
	live   bool                 // ticks of wall time (live capture), not of packet time
	buf    []byte
	wall   time.Time     // when the metrics of a -r run were last refreshed
	gap    time.Duration // and how long until the next refresh
	nextS  time.Time     // live: the next snapshot instant
}

// startFleet checks the fleet flags and starts the metrics server. It returns nil when neither
// flag is given.
func startFleet(o *options, ropts *report.Options, stderr io.Writer) (*fleet, error) {
	if o.metricsAddr == "" && o.metricsPorts != "" {
		return nil, usageErr("--metrics-ports needs --metrics ADDR (e.g. --metrics :9917 --metrics-ports %s)", o.metricsPorts)
	}
	switch {
	case o.snapshotEvery < 0:
		return nil, usageErr("--snapshot-every %v: give a positive duration (e.g. 1m)", o.snapshotEvery)
	case o.snapshotEvery > 0 && o.output != "json":
		return nil, usageErr("--snapshot-every writes JSON lines: add -o json")
	case o.snapshotEvery > 0 && o.iface != "" && o.snapshotEvery < runner.DefaultRefresh:
		return nil, usageErr("--snapshot-every %v: live capture refreshes once a second; give 1s or more", o.snapshotEvery)
	case o.snapshotEvery > 0 && o.html != "":
		return nil, usageErr("--snapshot-every streams; --html draws every connection at the end: use one or the other")
	case o.metricsAddr != "" && o.html != "":
		return nil, usageErr("--metrics follows a streaming run; --html keeps every connection for the end: use one or the other")
	}
	if o.metricsAddr == "" && o.snapshotEvery == 0 {
		return nil, nil
	}
	f := &fleet{o: o}
	if o.snapshotEvery > 0 {
		f.snap = report.NewSnapshotJSON(ropts)
	}
	if o.metricsAddr != "" {
		ports, err := metrics.ParsePorts(o.metricsPorts)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		f.coll = metrics.New(ports)
		if f.srv, err = metrics.Serve(o.metricsAddr, f.coll); err != nil {
			return nil, &exitError{2, err.Error()}
		}
		if !o.quiet {
			fmt.Fprintf(stderr, "tcpstate: serving metrics at http://%s/metrics\n", f.srv.Addr)
		}
	}
	return f, nil
}

func (f *fleet) close() {
	if f != nil && f.srv != nil {
		f.srv.Close()
	}
}

// Finished counts a connection written out and forgotten.
func (f *fleet) Finished(c *tracker.Conn) {
	if f.coll != nil {
		f.coll.Finished(c)
	}
}

// Tick refreshes the metrics and writes the snapshots due.
func (f *fleet) Tick(open *runner.Open) {
	if f.live {
		f.liveTick(open)
	} else {
		f.fileTick(open)
	}
}

// snapshot writes the snapshot records of the connections still open at open.At.
func (f *fleet) snapshot(open *runner.Open) {
	f.buf = f.buf[:0]
	open.Snapshot(func(c *tracker.Conn) {
		if c.Open() {
			f.buf = f.snap.Append(f.buf, c, open.At)
		}
	})
	f.stream.Raw(f.buf)
}

// refresh sets the gauges to the connections open holds.
func (f *fleet) refresh(open *runner.Open) {
	total, per := open.Capture()
	if per == nil {
		per = []capture.Stats{total}
	}
	f.coll.Refresh(open.Visit, per, open.Connections())
}

// liveTick is the live capture's refresh, once a second: metrics, and a snapshot when one is
// due.
func (f *fleet) liveTick(open *runner.Open) {
	if f.coll != nil {
		f.refresh(open)
	}
	if f.snap == nil {
		return
	}
	at := open.At
	if f.nextS.IsZero() {
		f.nextS = at.Truncate(f.o.snapshotEvery).Add(f.o.snapshotEvery)
		return
	}
	if at.Before(f.nextS) {
		return
	}
	for !at.Before(f.nextS) {
		f.nextS = f.nextS.Add(f.o.snapshotEvery)
	}
	f.snapshot(open)
}

// fileRun sets a -r run up: snapshots at each interval of packet time, and the metrics'
// gauges refreshed (about once a second of wall time) at those instants too.
func (f *fleet) fileRun(rc *runner.Config) {
	// The metrics look at the clock each second of packet time; snapshots come at the
	// multiples of --snapshot-every among those seconds (or at their own pace when it is not a
	// whole number of seconds).
	every := f.o.snapshotEvery
	if f.coll != nil && (every == 0 || every%time.Second == 0) {
		every = time.Second
	}
	rc.Every = every
	rc.OnEvery = f.Tick
}

// fileTick is a -r run's tick, at a multiple of fileRun's interval of packet time.
func (f *fleet) fileTick(open *runner.Open) {
	at := open.At
	if f.snap != nil && at.Truncate(f.o.snapshotEvery).Equal(at) {
		f.snapshot(open)
	}
	// The gauges: every connection in the table is copied and evaluated, which takes a
	// while on a big table (some 2 µs each): no more than a tenth of the run goes to them.
	if f.coll != nil && time.Since(f.wall) >= f.gap {
		t0 := time.Now()
		f.refresh(open)
		f.wall = time.Now()
		f.gap = max(runner.DefaultRefresh, 10*f.wall.Sub(t0))
	}
}
