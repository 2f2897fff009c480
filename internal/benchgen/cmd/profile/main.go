// Command profile runs tcpstate's file path (capture.OpenFiles → tracker.Run → report.Stream,
// as `tcpstate -r FILE -o json` does) under the Go profiler, so that where
// the time and the allocations go can be read with go tool pprof:
//
//	go build -o bin/profile ./internal/benchgen/cmd/profile
//	GOMAXPROCS=1 bin/profile -cpuprofile cpu.out -memprofile mem.out /tmp/tcpstate-bench/gen-*/A-*.pcap
//	go tool pprof -top bin/profile cpu.out
//	go tool pprof -top -sample_index=alloc_space bin/profile mem.out
//
// -stage stops early: "read" decodes only, "track" adds the tracker, "json" (default) writes
// the JSON lines too (to a discarding writer).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	runner "github.com/tcpstate/tcpstate/run"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/tracker"
)

func main() {
	cpu := flag.String("cpuprofile", "", "write a CPU profile to `FILE`")
	mem := flag.String("memprofile", "", "write an allocation profile to `FILE` (every allocation sampled)")
	stage := flag.String("stage", "json", "stop after: read, track or json")
	workers := flag.Int("workers", 1, "trackers in parallel (run.Config.Workers)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: profile [-cpuprofile FILE] [-memprofile FILE] [-stage read|track|json] CAPTURE...")
		os.Exit(2)
	}
	if *mem != "" {
		runtime.MemProfileRate = 1
	}
	if *cpu != "" {
		f, err := os.Create(*cpu)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	n, conns, err := run(flag.Args(), *stage, *workers)
	if err != nil {
		fail(err)
	}
	el := time.Since(start)
	fmt.Fprintf(os.Stderr, "%d segments, %d connections, %.2f s, %.0f packets/s\n", n, conns, el.Seconds(), float64(n)/el.Seconds())
	if *mem != "" {
		f, err := os.Create(*mem)
		if err != nil {
			fail(err)
		}
		runtime.GC() // the profile shows allocations as of the last completed collection
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			fail(err)
		}
		f.Close()
	}
}

func run(files []string, stage string, workers int) (n uint64, conns int, err error) {
	src, err := capture.OpenFiles(files, capture.Config{})
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	if stage == "read" {
		var seg capture.Segment
		for src.Next(&seg) {
			n++
		}
		if errs := src.Errs(); len(errs) > 0 {
			return n, 0, errs[0]
		}
		return n, 0, nil
	}
	prof, _ := tracker.LookupProfile("linux")
	ropts := &report.Options{Profile: prof}
	format := "json"
	if stage == "track" {
		format = "events" // writes nothing per connection
	}
	out := report.NewStream(io.Discard, format, ropts)
	rs := runner.Run(src, runner.Config{Config: flowtable.Config{Profile: prof}, Workers: workers,
		AtEnd: func(now time.Time) { ropts.Now = now }}, func(c *tracker.Conn) {
		conns++
		out.Conn(c)
	})
	if err := out.Close(); err != nil {
		return n, conns, err
	}
	if errs := src.Errs(); len(errs) > 0 {
		return n, 0, errs[0]
	}
	return rs.Segments, conns, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "profile:", err)
	os.Exit(2)
}
