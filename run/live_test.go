package run_test

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/run"
	"github.com/tcpstate/tcpstate/tracker"
)

// replay is a kernel recording played as a live source, as if its last packet came ago before
// now; once it has played every packet it idles until stopped.
type replay struct {
	segs    []capture.Segment
	next    atomic.Int64
	stopped atomic.Bool
}

func newReplay(t *testing.T, path string, ago time.Duration) *replay {
	t.Helper()
	src, err := capture.OpenFiles([]string{path}, capture.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r := &replay{}
	var seg capture.Segment
	for src.Next(&seg) {
		r.segs = append(r.segs, seg)
	}
	if len(r.segs) == 0 {
		t.Fatalf("%s: no segments", path)
	}
	shift := time.Now().Add(-ago).Sub(r.segs[len(r.segs)-1].Time)
	for i := range r.segs {
		r.segs[i].Time = r.segs[i].Time.Add(shift)
	}
	return r
}

func (r *replay) Poll(seg *capture.Segment) (bool, bool) {
	if r.stopped.Load() {
		return false, false
	}
	if i := r.next.Load(); int(i) < len(r.segs) {
		*seg = r.segs[i]
		r.next.Add(1)
		return true, true
	}
	time.Sleep(5 * time.Millisecond) // an idle interface
	return false, true
}

func (r *replay) played() bool { return int(r.next.Load()) == len(r.segs) }
func (r *replay) Stop()        { r.stopped.Store(true) }
func (r *replay) Stats() capture.Stats {
	n := uint64(r.next.Load())
	return capture.Stats{Packets: n, TCP: n}
}
func (r *replay) Errs() []*capture.ReadError { return nil }
func (r *replay) Flush() error               { return nil }

// recorder is a sink that remembers what the driver handed it (the IDs: a Conn is the
// driver's once handed over).
type recorder struct {
	finished  []uint64
	notClosed []string // finished connections not closed at both ends
	ticks     int
	ended     int
	open      []uint64
	onTick    func(*run.Open)
	err       error
}

func (r *recorder) Finished(c *tracker.Conn) {
	r.finished = append(r.finished, c.ID)
	if c.Client.State != tracker.Closed || c.Server.State != tracker.Closed {
		r.notClosed = append(r.notClosed, fmt.Sprintf("#%d %s/%s", c.ID, c.Client.State, c.Server.State))
	}
}
func (r *recorder) Tick(o *run.Open) {
	r.ticks++
	if r.onTick != nil {
		r.onTick(o)
	}
}
func (r *recorder) End(_ time.Time, open []*tracker.Conn) {
	r.ended++
	for _, c := range open {
		r.open = append(r.open, c.ID)
	}
}
func (r *recorder) Err() error { return r.err }

func linux(t *testing.T) tracker.Profile {
	p, err := tracker.LookupProfile("linux")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const mixed = "../testdata/pcaps/kernel/mixed-40/capture.pcap"

// TestLiveHandsEveryConnectionOnce: the live driver hands each connection to its sink once:
// those closed at both ends (and quiet since) while capturing, the rest, in ID order, at the
// end; they are the connections the file driver finds in the same packets.
func TestLiveHandsEveryConnectionOnce(t *testing.T) {
	src := newReplay(t, mixed, 20*time.Second) // the recording's connections closed 20 s ago
	var offline []uint64
	run.Run(capture.NewSliceSource(slices.Clone(src.segs)), run.Config{}, func(c *tracker.Conn) { offline = append(offline, c.ID) })

	rec := &recorder{}
	// Once every packet is in and a tick has come after it, stop: that tick released what
	// had finished.
	var sawAll bool
	rec.onTick = func(*run.Open) {
		if sawAll {
			src.Stop()
		}
		sawAll = src.played()
	}
	l := run.NewLive(run.LiveConfig{Refresh: 20 * time.Millisecond}, src, rec)
	if err := l.Run(); err != nil {
		t.Fatal(err)
	}
	if rec.ended != 1 {
		t.Fatalf("End called %d times", rec.ended)
	}
	if len(rec.finished) == 0 {
		t.Fatal("no connection handed over as finished during the capture")
	}
	if rec.notClosed != nil {
		t.Errorf("handed over as finished while not closed at both ends: %v", rec.notClosed)
	}
	if !slices.IsSorted(rec.open) {
		t.Errorf("End's connections are not in ID order: %v", rec.open)
	}
	got := slices.Sorted(slices.Values(append(rec.finished, rec.open...)))
	if !slices.Equal(got, offline) {
		t.Errorf("live handed over connections %v, the file driver finds %v", got, offline)
	}
	st := l.Stats()
	if st.Finished != uint64(len(rec.finished)) || st.Connections != uint64(len(offline)) || st.Packets != uint64(len(src.segs)) {
		t.Errorf("stats %+v: want %d finished, %d connections, %d packets", st, len(rec.finished), len(offline), len(src.segs))
	}
	t.Logf("%d connections: %d finished during the capture, %d at the end; %d ticks", len(offline), len(rec.finished), len(rec.open), rec.ticks)
}

// TestLiveStopsOnSinkError: a sink that cannot write (a closed pipe) ends the capture.
func TestLiveStopsOnSinkError(t *testing.T) {
	src := newReplay(t, mixed, 20*time.Second)
	rec := &recorder{}
	rec.onTick = func(*run.Open) {
		if rec.ticks == 3 {
			rec.err = errors.New("broken pipe")
		}
	}
	l := run.NewLive(run.LiveConfig{Refresh: 20 * time.Millisecond}, src, rec)
	if err := l.Run(); err != nil {
		t.Fatal(err)
	}
	if !src.stopped.Load() || rec.ended != 1 {
		t.Errorf("after the sink's error: source stopped %v, End called %d times", src.stopped.Load(), rec.ended)
	}
}

// TestLiveOpenAtTick: at each tick the sink sees the connections still tracked, as the tables
// hold them, in ID order; the snapshot is those of them still open.
func TestLiveOpenAtTick(t *testing.T) {
	src := newReplay(t, mixed, 20*time.Second)
	rec := &recorder{}
	var checked bool
	rec.onTick = func(o *run.Open) {
		if !src.played() || checked {
			return
		}
		checked = true
		conns := o.Conns()
		if len(conns) == 0 {
			t.Error("no connection tracked at a tick after every packet")
		}
		var open, visited int
		o.Snapshot(func(c *tracker.Conn) {
			if !c.Open() {
				t.Errorf("snapshot of #%d, closed", c.ID)
			}
			open++
		})
		o.Visit(func(*tracker.Conn) { visited++ })
		if visited != len(conns) || open > len(conns) || open == 0 {
			t.Errorf("%d connections, %d visited, %d in the snapshot", len(conns), visited, open)
		}
		if o.Wall.Sub(o.At) != run.DefaultLag {
			t.Errorf("tick at %v for wall time %v: want the lag %v behind", o.At, o.Wall, run.DefaultLag)
		}
		src.Stop()
	}
	if err := run.NewLive(run.LiveConfig{Refresh: 20 * time.Millisecond}, src, rec).Run(); err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Error("no tick after every packet")
	}
}
