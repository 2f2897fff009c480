// Package run drives captures through flow tables; it is about driving the engine, and holds
// no flags, no terminal and no wording. It owns:
//
//   - the front end every file driver shares: --at, --shard, the capture's clock, progress;
//   - the serial file driver (Run) and the parallel one (several flow-table shards fed by one
//     reader, merged back in order of first packet: parallel.go);
//   - the live driver (Live, live.go): the capture loop, ticks of wall-clock time that run the
//     timers (flowtable.Table.Tick) and release finished connections (Release), the rule for
//     when a connection is finished, stop and drain at the end; with NewFanout (workers.go),
//     one flow table per AF_PACKET socket;
//   - sinks (sink.go): what every driver hands its results to. A Sink gets the connections as
//     they finish, the ticks with what is still open, and the end. The output stream, the
//     live view, the metrics and the --fail-on check are sinks, built by cmd/tcpstate on the
//     writers of package report.
package run

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/tracker"
)

// Config sets up Run.
type Config struct {
	// Config is the flow tables' setup. Its Stream field is ignored: Run streams with Stream.
	flowtable.Config
	// Stream sets how connections are finished and kept (its OnFinished, Handoff and OnNew
	// are Run's own).
	Stream flowtable.StreamConfig
	// At stops reading at the first segment after it (--at); with AtIsOffset, At is
	// AtOffset after the first segment instead.
	At         time.Time
	AtOffset   time.Duration
	AtIsOffset bool
	// ShardI of ShardN (ShardN 0: all): only flows whose flowtable.FlowHash falls in that shard are
	// analysed (--shard), so that N runs cover a capture with disjoint results.
	ShardI, ShardN int
	// Workers is how many trackers run in parallel, each on its part of the flows (by
	// flowtable.FlowHash), with the capture read and decoded in a goroutine of its own. 0 or 1: one
	// tracker, in the caller's goroutine. Results are the same whatever the number.
	Workers int
	// Keep: nothing is finished early or packed: every connection is kept whole to the end of
	// the input and handed out then, in ID order (the HTML report draws each one with its
	// packets). Stream is ignored.
	Keep bool
	// AtEnd, if set, is called once the input is read, with the instant the connections
	// still open are then evaluated at (the last segment's time, or At), before they are
	// handed out.
	AtEnd func(now time.Time)
	// Every, with OnEvery: each time the capture's clock passes a multiple of Every (packet
	// time), OnEvery is called with what the flow table holds as of that instant (Open.At),
	// before the segment that passed it is tracked (--snapshot-every; a Sink's Tick). Run then
	// uses one flow table (no Workers).
	Every   time.Duration
	OnEvery func(open *Open)
	// Progress, if set, is called every 64 Ki segments with the source's statistics (from the
	// goroutine that reads).
	Progress func(capture.Stats)
}

// Stats is what Run did.
type Stats struct {
	flowtable.Stats
	// Now is the instant the connections left at the end were evaluated at.
	Now time.Time
	// Held is the most finished connections that waited, packed, for an earlier one to be
	// written (flowtable.Reorder).
	Held int
}

const progressEvery = 1 << 16

// Run reads src through streaming trackers and hands every connection to out once it is
// finished, in ID order (order of first packet), and returns when the input is done. out is
// called from the caller's goroutine; the connection it gets is reused once it returns.
func Run(src capture.Source, rc Config, out func(*tracker.Conn)) Stats {
	// --max-flows runs in one goroutine: its table is one tracker's anyway (what it evicts
	// must not depend on the number of cores), and handing its stream of evicted connections
	// to another goroutine cost more than it saved: 40% slower on a SYN flood, and tens of
	// megabytes of connections in flight, against the memory bound the flag is for.
	if rc.Workers > 1 && rc.OnEvent == nil && rc.OnSegment == nil && rc.Stream.MaxFlows <= 0 && !rc.Keep && rc.OnEvery == nil {
		return runParallel(src, rc, out)
	}
	cfg := rc.Config
	reorder := flowtable.NewReorder(&cfg, out)
	cfg.Stream = nil
	if !rc.Keep {
		sc := rc.Stream
		sc.OnFinished, sc.Handoff, sc.OnNew = reorder.Put, false, nil
		cfg.Stream = &sc
	}
	tr := flowtable.New(cfg)
	segs := inPlace(src)
	var n uint64
	f := newFrontEnd(&rc)
	var every everyClock
	for seg := segs.NextRef(); seg != nil; seg = segs.NextRef() {
		if n++; n%progressEvery == 0 && rc.Progress != nil {
			rc.Progress(src.Stats())
		}
		admit := f.admit(seg)
		if admit == admitStop {
			goto end
		}
		if rc.OnEvery != nil {
			every.pass(&rc, f.clock, tr, src)
		}
		if admit == admitSkip {
			continue
		}
		tr.AddAt(seg, f.hash, 0, f.clock)
	}
end:
	now := f.end()
	if rc.AtEnd != nil {
		rc.AtEnd(now)
	}
	tr.Advance(f.clock) // segments of other --shard slices moved the clock too
	tr.Finish(now)
	for _, c := range tr.Conns() { // Keep: every connection, in ID order
		out(c)
	}
	_, held := reorder.Held()
	return Stats{Stats: tr.Stats(), Now: now, Held: held}
}

// inPlace is src as a RefSource: itself if it is one (which saves a copy of a quarter of a
// kilobyte per segment), else one that reads through Next into a segment of its own.
func inPlace(src capture.Source) capture.RefSource {
	if rs, ok := src.(capture.RefSource); ok {
		return rs
	}
	return &viaNext{Source: src}
}

// lending is src as a SlotSource: itself if it is one, else one that lends no slot.
func lending(src capture.Source) capture.SlotSource {
	if ss, ok := src.(capture.SlotSource); ok {
		return ss
	}
	return slotless{inPlace(src)}
}

type slotless struct{ capture.RefSource }

func (s slotless) NextIn(*capture.Segment) *capture.Segment { return s.NextRef() }

// viaNext makes a RefSource of a Source.
type viaNext struct {
	capture.Source
	seg capture.Segment
}

func (v *viaNext) NextRef() *capture.Segment {
	if !v.Next(&v.seg) {
		return nil
	}
	return &v.seg
}

// frontEnd is what Run decides about a segment before any tracker sees it: --at and --shard.
// It also keeps the capture's clock: the latest time of every segment read, whichever shard
// it is for, so that timers run out the same way in every shard and in an unsharded run.
type frontEnd struct {
	rc    *Config
	at    time.Time
	first bool
	clock time.Time
	hash  uint64 // the flow hash of the segment admitted last
}

const (
	admitTrack = iota
	admitSkip
	admitStop
)

func newFrontEnd(rc *Config) *frontEnd { return &frontEnd{rc: rc, at: rc.At, first: true} }

func (f *frontEnd) admit(seg *capture.Segment) int {
	if f.first {
		f.first = false
		if f.rc.AtIsOffset {
			f.at = seg.Time.Add(f.rc.AtOffset)
		}
	}
	if !f.at.IsZero() && seg.Time.After(f.at) {
		return admitStop
	}
	if seg.Time.After(f.clock) {
		f.clock = seg.Time
	}
	f.hash = flowtable.FlowHash(seg.Src, seg.Dst)
	if f.rc.ShardN > 0 && flowtable.ShardOf(f.hash, f.rc.ShardN) != f.rc.ShardI {
		return admitSkip
	}
	return admitTrack
}

// end is the instant to finish at: At if set, else the capture's clock.
func (f *frontEnd) end() time.Time {
	if !f.at.IsZero() {
		return f.at
	}
	return f.clock
}

// everyClock calls Config.OnEvery at each multiple of Every the capture's clock passes.
type everyClock struct{ next time.Time }

func (e *everyClock) pass(rc *Config, clock time.Time, t *flowtable.Table, src capture.Source) {
	if e.next.IsZero() {
		e.next = clock.Truncate(rc.Every).Add(rc.Every)
		return
	}
	for !clock.Before(e.next) {
		rc.OnEvery(&Open{At: e.next, Wall: e.next, tables: []*flowtable.Table{t},
			capture: func() (capture.Stats, []capture.Stats) { return src.Stats(), nil }})
		e.next = e.next.Add(rc.Every)
	}
}
