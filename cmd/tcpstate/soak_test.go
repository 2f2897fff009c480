package main

import (
	"container/heap"
	"io"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/metrics"
	"github.com/tcpstate/tcpstate/report"
	runner "github.com/tcpstate/tcpstate/run"
	"github.com/tcpstate/tcpstate/tracker"
)

// The soak: hours of packet time through the live session (its trackers, ticks once a second
// of packet time, the metrics and snapshots), in seconds or minutes of wall time, with the heap
// sampled after a collection. The traffic is generated (no kernel can be made to live hours in
// a test): a steady mix of short exchanges, refusals, SYNs never answered (their retries run
// out), connections held half-closed for minutes and long-lived ones with a keepalive every
// minute. Concurrency is steady once the longest lives have come round, so the heap must be
// too: a leak (a map keyed by connection, a slice of finished ones) grows with time instead.

// soakSegs is the generated traffic, in time order (a heap of segments by time).
type soakSegs []capture.Segment

func (h soakSegs) Len() int           { return len(h) }
func (h soakSegs) Less(i, j int) bool { return h[i].Time.Before(h[j].Time) }
func (h soakSegs) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *soakSegs) Push(x any)        { *h = append(*h, x.(capture.Segment)) }
func (h *soakSegs) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// soakGen schedules the segments of each new connection.
type soakGen struct {
	segs    soakSegs
	n       uint64
	longFor time.Duration
	holdFor time.Duration
}

// conn schedules connection n, starting at t0, with its fate.
func (g *soakGen) conn(t0 time.Time) {
	g.n++
	n := g.n
	// 4-tuples cycle through 40,000 client ports on 50 client addresses: reused long after
	// the previous instance finished.
	client := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + n%50)}), uint16(20000+n/50%40000))
	server := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, 2}), 443)
	cs, ss := capture.Seq(n*7919), capture.Seq(n*104729) // ISNs
	at := t0
	send := func(after time.Duration, fromClient bool, flags capture.Flags, payload uint32) {
		at = at.Add(after)
		seg := capture.Segment{Time: at, Flags: flags, Window: 64240, PayloadLen: payload, IPLen: 40 + payload, TTL: 64}
		if fromClient {
			seg.Src, seg.Dst, seg.Seq, seg.Ack = client, server, cs, ss
			if flags.Has(capture.SYN) || flags.Has(capture.FIN) {
				cs++
			}
			cs += capture.Seq(payload)
		} else {
			seg.Src, seg.Dst, seg.Seq, seg.Ack = server, client, ss, cs
			if flags.Has(capture.SYN) || flags.Has(capture.FIN) {
				ss++
			}
			ss += capture.Seq(payload)
		}
		if !flags.Has(capture.ACK) {
			seg.Ack = 0
		}
		heap.Push(&g.segs, seg)
	}
	ms := time.Millisecond
	handshake := func() {
		send(0, true, capture.SYN, 0)
		send(ms, false, capture.SYN|capture.ACK, 0)
		send(ms, true, capture.ACK, 0)
	}
	exchange := func() {
		send(ms, true, capture.PSH|capture.ACK, 120)
		send(ms, false, capture.ACK, 0)
		send(2*ms, false, capture.PSH|capture.ACK, 900)
		send(ms, true, capture.ACK, 0)
	}
	closeClientFirst := func(after time.Duration) {
		send(after, true, capture.FIN|capture.ACK, 0)
		send(ms, false, capture.FIN|capture.ACK, 0)
		send(ms, true, capture.ACK, 0)
	}
	switch n % 10 {
	case 0, 1, 2, 3, 4, 5: // a short exchange, closed cleanly
		handshake()
		exchange()
		closeClientFirst(5 * ms)
	case 6: // refused
		send(0, true, capture.SYN, 0)
		send(ms, false, capture.RST|capture.ACK, 0)
	case 7: // SYNs never answered: Linux retries at 1, 3, 7, 15, 31 and 63 s, then gives up
		for i, wait := range []time.Duration{0, 1, 2, 4, 8, 16, 32} {
			if i > 0 {
				cs-- // a retransmission: same sequence number
			}
			send(wait*time.Second, true, capture.SYN, 0)
		}
	case 8: // long-lived: a keepalive exchange every minute, then a clean close
		handshake()
		exchange()
		for d := time.Minute; d < g.longFor; d += time.Minute {
			exchange()
			at = at.Add(time.Minute - 5*ms)
		}
		closeClientFirst(time.Second)
	case 9: // half-closed: the server holds CLOSE_WAIT for minutes, then closes
		handshake()
		exchange()
		send(ms, true, capture.FIN|capture.ACK, 0)
		send(ms, false, capture.ACK, 0)
		send(g.holdFor, false, capture.FIN|capture.ACK, 0)
		send(ms, true, capture.ACK, 0)
	}
}

// TestSoakLiveHeap: TCPSTATE_SOAK=1 for the long run (6 hours of packet time, 20 connections a
// second, lives of 30 minutes: a few minutes of wall time); by default 80 minutes, 5 a second,
// lives of 20 minutes (some 5 s).
func TestSoakLiveHeap(t *testing.T) {
	span, rate, longFor, holdFor := 80*time.Minute, 5, 20*time.Minute, 10*time.Minute
	if os.Getenv("TCPSTATE_SOAK") != "" {
		span, rate, longFor, holdFor = 6*time.Hour, 20, 30*time.Minute, 15*time.Minute
	} else if testing.Short() {
		t.Skip("-short: the soak takes seconds (TCPSTATE_SOAK=1 for the long one)")
	}
	o := &options{output: "json", iface: "soak", snapshotEvery: 5 * time.Minute}
	s := newLiveSession(o, tracker.NamesRFC, linuxProfile(t), nil, &replaySource{}, io.Discard, io.Discard)
	coll := metrics.New([]uint16{443})
	s.fleet = &fleet{o: o, coll: coll, snap: report.NewSnapshotJSON(s.ropts)}
	l := s.prepare()
	tr := l.Tables()[0]

	g := &soakGen{longFor: longFor, holdFor: holdFor}
	start := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	end := start.Add(span)
	warm := start.Add(longFor + holdFor + 5*time.Minute) // every kind of life has come round
	var samples []uint64
	var atWarm, connsAtWarm uint64
	var segs, maxOpen int
	sample := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc + uint64(flowtable.MappedBytes()) // the flow tables' own memory too
	}
	wall := time.Now()
	for sec := start; sec.Before(end); sec = sec.Add(time.Second) {
		for i := range rate {
			g.conn(sec.Add(time.Duration(i) * time.Second / time.Duration(rate)))
		}
		next := sec.Add(time.Second)
		for len(g.segs) > 0 && g.segs[0].Time.Before(next) {
			seg := heap.Pop(&g.segs).(capture.Segment)
			tr.Add(&seg)
			segs++
		}
		// The live driver's once-a-second refresh, at this second of packet time (Refresh
		// evaluates at now - the lag).
		l.Refresh(next.Add(runner.DefaultLag))
		maxOpen = max(maxOpen, len(tr.Conns()))
		if next.Sub(start)%(10*time.Minute) == 0 {
			h := sample()
			if !next.Before(warm) {
				if atWarm == 0 {
					atWarm, connsAtWarm = h, g.n
				}
				samples = append(samples, h)
			}
			t.Logf("%5s of packet time: heap %5.1f MB, %d connections tracked, %d finished, %d pending segments",
				next.Sub(start), float64(h)/1e6, len(tr.Conns()), l.Finished(), len(g.segs))
		}
	}
	if err := s.sinks.Err(); err != nil {
		t.Fatal(err)
	}
	if len(samples) < 4 {
		t.Fatalf("only %d samples after the warm-up", len(samples))
	}
	// Bounded: after the warm-up the heap grows by less than 16 bytes per connection started
	// since (anything kept per connection, a map entry, a pointer in a slice, takes more), with
	// 256 KB of slack for the buffers' own swings.
	grown := int64(slices.Max(samples)) - int64(atWarm)
	since := g.n - connsAtWarm
	if bound := max(256<<10, 16*int64(since)); grown > bound {
		t.Errorf("the heap grew by %d bytes after the warm-up (%.1f MB then, %.1f MB at most since), over %d connections: %.1f bytes each, more than 16: it grows with time",
			grown, float64(atWarm)/1e6, float64(slices.Max(samples))/1e6, since, float64(grown)/float64(since))
	}
	if l.Finished() < uint64(span.Seconds())*uint64(rate)*8/10 {
		t.Errorf("only %d connections finished of %d: the traffic is not what the soak means to run", l.Finished(), g.n)
	}
	t.Logf("%s of packet time, %d connections, %d segments, at most %d tracked at once, %d finished; heap after the warm-up %d–%d bytes (%+d over %d connections); %v wall time",
		span, g.n, segs, maxOpen, l.Finished(), slices.Min(samples), slices.Max(samples), grown, since, time.Since(wall).Round(time.Millisecond))
}
