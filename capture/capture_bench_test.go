package capture_test

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/internal/benchgen"
)

// End-to-end benchmarks on small generated files (in b.TempDir, so read from the page cache):
// ReadOnly is the decode alone (OpenFiles → Segments, counted), Pipeline adds the tracker
// (OpenFiles → tracker → Finish), i.e. tcpstate without the report. One op reads the whole file;
// MB/s counts file bytes. scripts/bench.sh times the real program on the full-size workloads.

var benchWorkloads = []struct {
	name string
	cfg  benchgen.Config
}{
	{"A", benchgen.Config{Workload: "A", Seed: 1, Conns: 10_000, Concurrent: 2_000}}, // ~128k packets
	{"B", benchgen.Config{Workload: "B", Seed: 1, Scale: 0.05}},                      // 50k SYNs
	{"C", benchgen.Config{Workload: "C", Seed: 1, Scale: 0.05}},                      // 100k packets
}

func BenchmarkReadOnly(b *testing.B) {
	for _, w := range benchWorkloads {
		b.Run(w.name, func(b *testing.B) { benchFile(b, w.cfg, false) })
	}
}

func BenchmarkPipeline(b *testing.B) {
	for _, w := range benchWorkloads {
		b.Run(w.name, func(b *testing.B) { benchFile(b, w.cfg, true) })
	}
}

func benchFile(b *testing.B, cfg benchgen.Config, track bool) {
	path := filepath.Join(b.TempDir(), "w.pcap")
	res, err := benchgen.GenerateFile(path, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.ReadFile(path); err != nil { // warm the page cache
		b.Fatal(err)
	}
	b.SetBytes(res.Bytes)
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		src, err := capture.OpenFiles([]string{path}, capture.Config{})
		if err != nil {
			b.Fatal(err)
		}
		var tr *flowtable.Table
		if track {
			tr = flowtable.New(flowtable.Config{})
		}
		var seg capture.Segment
		var n int64
		for src.Next(&seg) {
			n++
			if tr != nil {
				tr.Add(&seg)
			}
		}
		if tr != nil {
			tr.Finish(time.Time{})
		}
		src.Close()
		if n != res.Packets {
			b.Fatalf("read %d of %d packets: %v", n, res.Packets, src.Errs())
		}
	}
	runtime.ReadMemStats(&after)
	pkts := float64(res.Packets) * float64(b.N)
	b.ReportMetric(pkts/b.Elapsed().Seconds(), "pkts/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/pkts, "allocs/pkt")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/pkts, "B/pkt")
}
