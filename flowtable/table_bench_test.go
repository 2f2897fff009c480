package flowtable_test

import (
	"bytes"
	"runtime"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/internal/benchgen"
	"github.com/tcpstate/tcpstate/run"
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
	for _, mode := range []struct {
		name    string
		workers int
	}{{"keep-all", 0}, {"streaming", 1}, {"streaming-2-workers", 2}} {
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				if mode.workers == 0 {
					tr := flowtable.New(flowtable.Config{})
					for i := range segs {
						tr.Add(&segs[i])
					}
					tr.Finish(time.Time{})
					continue
				}
				run.Run(capture.NewSliceSource(segs), run.Config{Workers: mode.workers}, func(*tracker.Conn) {})
			}
			runtime.ReadMemStats(&after)
			pkts := float64(len(segs)) * float64(b.N)
			b.ReportMetric(pkts/b.Elapsed().Seconds(), "pkts/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/pkts, "allocs/pkt")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/pkts, "B/pkt")
		})
	}
}

// BenchmarkTrackerSteady is the per-packet path in its steady state: segments of connections
// that are open and live (a bulk transfer, replayed with shifted times), through a streaming
// tracker. One op is one packet; it must allocate nothing.
func BenchmarkTrackerSteady(b *testing.B) {
	segs := decodeWorkload(b, benchgen.Config{Workload: "C", Seed: 1, Scale: 0.01})
	// Only the open part is replayed: a close would end the connection (and have it packed,
	// as closed ones are), and the next round's SYN would wake it, which is not this path.
	for i, s := range segs {
		if s.Flags&(capture.FIN|capture.RST) != 0 {
			segs = segs[:i]
			break
		}
	}
	tr := flowtable.New(flowtable.Config{Stream: &flowtable.StreamConfig{OnFinished: func(*tracker.Conn) {}}})
	span := segs[len(segs)-1].Time.Sub(segs[0].Time) + time.Second
	shift := time.Duration(0)
	for i := range segs { // warm up: the connection exists, buffers have grown
		tr.Add(&segs[i])
	}
	var seg capture.Segment
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % len(segs)
		if j == 0 {
			shift += span
		}
		seg = segs[j]
		seg.Time = seg.Time.Add(shift)
		tr.Add(&seg)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}
