package main

import (
	"fmt"
	"io"
	"time"

	"github.com/tcpstate/tcpstate/flowtable"
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

// fleet is what --metrics and --snapshot-every add to a run.
type fleet struct {
	o     *options
	coll  *metrics.Collector // nil without --metrics
	srv   *metrics.Server
	snap  *report.SnapshotJSON // nil without --snapshot-every
	buf   []byte
	wall  time.Time     // when the metrics of a -r run were last refreshed
	gap   time.Duration // and how long until the next refresh
	nextS time.Time     // live: the next snapshot instant
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
	case o.snapshotEvery > 0 && o.iface != "" && o.snapshotEvery < refreshEvery:
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

// snapshot is the snapshot records of conns (those still open) at instant at.
func (f *fleet) snapshot(conns []*tracker.Conn, at time.Time) []byte {
	f.buf = f.buf[:0]
	for _, c := range conns {
		if c.Open() {
			f.buf = f.snap.Append(f.buf, c, at)
		}
	}
	return f.buf
}

// liveTick is the live session's refresh: metrics, and a snapshot when one is due (at is the
// instant the connections were just evaluated at).
func (f *fleet) liveTick(s *liveSession, at time.Time) {
	if f.coll != nil {
		f.coll.Update(s.conns(), s.captureStats(), s.connections())
	}
	if f.snap == nil || s.view != nil {
		return
	}
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
	if _, err := s.out.Write(f.snapshot(s.conns(), at)); err != nil && s.writeErr == nil {
		s.writeErr = err
	}
}

// fileRun sets a -r run up: snapshots at each interval of packet time, and the metrics'
// gauges refreshed (about once a second of wall time) at those instants too.
func (f *fleet) fileRun(rc *runner.Config, stream *report.Stream, stats func() capture.Stats) {
	// The metrics look at the clock each second of packet time; snapshots come at the
	// multiples of --snapshot-every among those seconds (or at their own pace when it is not a
	// whole number of seconds).
	every := f.o.snapshotEvery
	if f.coll != nil && (every == 0 || every%time.Second == 0) {
		every = time.Second
	}
	rc.Every = every
	rc.OnEvery = func(at time.Time, t *flowtable.Table) {
		if f.snap != nil && at.Truncate(f.o.snapshotEvery).Equal(at) {
			var open []*tracker.Conn
			t.Snapshot(at, func(c *tracker.Conn) { open = append(open, c) })
			stream.Raw(f.snapshot(open, at))
		}
		// The gauges: every connection in the table is copied and evaluated, which takes a
		// while on a big table (some 2 µs each): no more than a tenth of the run goes to them.
		if f.coll != nil && time.Since(f.wall) >= f.gap {
			t0 := time.Now()
			f.coll.Refresh(func(count func(*tracker.Conn)) { t.Visit(at, count) }, []capture.Stats{stats()}, t.Stats().Connections)
			f.wall = time.Now()
			f.gap = max(refreshEvery, 10*f.wall.Sub(t0))
		}
	}
}
