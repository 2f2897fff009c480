package tracker_test

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/benchgen"
	"github.com/tcpstate/tcpstate/tracker"
)

// The tracker alone: each workload is generated and decoded once, outside the timed loop, into
// a slice of Segments; every iteration feeds the whole slice to a new Tracker and finishes it.
// Besides ns/op (one op = the whole workload), they report packets/s and allocations per packet.
// scripts/bench.sh times the whole program on the full-size workloads.

func BenchmarkTrackerWorkloadA(b *testing.B) {
	// 10,000 connections, 2,000 open at a time (as in the full workload): ~128,000 packets.
	benchTracker(b, benchgen.Config{Workload: "A", Seed: 1, Conns: 10_000, Concurrent: 2_000})
}

func BenchmarkTrackerWorkloadB(b *testing.B) {
	benchTracker(b, benchgen.Config{Workload: "B", Seed: 1, Scale: 0.05}) // 50,000 SYNs
}

func BenchmarkTrackerWorkloadC(b *testing.B) {
	benchTracker(b, benchgen.Config{Workload: "C", Seed: 1, Scale: 0.05}) // 100,000 packets
}

// decodeWorkload generates the workload in memory and decodes it as tcpstate does.
func decodeWorkload(b *testing.B, cfg benchgen.Config) []capture.Segment {
	b.Helper()
	var buf bytes.Buffer
	res, err := benchgen.Generate(&buf, cfg)
	if err != nil {
		b.Fatal(err)
	}
	src, err := capture.OpenFiles([]string{"-"}, capture.Config{Stdin: &buf})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	segs := make([]capture.Segment, 0, res.Packets)
	var seg capture.Segment
	for src.Next(&seg) {
		segs = append(segs, seg)
	}
	if errs := src.Errs(); len(errs) > 0 || int64(len(segs)) != res.Packets {
		b.Fatalf("decoded %d of %d packets: %v", len(segs), res.Packets, errs)
	}
	return segs
}

func benchTracker(b *testing.B, cfg benchgen.Config) {
	segs := decodeWorkload(b, cfg)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		tr := tracker.New(tracker.Config{})
		for i := range segs {
			tr.Add(&segs[i])
		}
		tr.Finish(time.Time{})
	}
	runtime.ReadMemStats(&after)
	pkts := float64(len(segs)) * float64(b.N)
	b.ReportMetric(pkts/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/pkts, "allocs/pkt")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/pkts, "B/pkt")
}
