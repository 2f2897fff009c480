// Command benchgen writes one of the synthetic benchmark workloads as a pcap file.
//
//	go run ./internal/benchgen/cmd/benchgen -workload A -seed 1 -o /tmp/a.pcap
//	go run ./internal/benchgen/cmd/benchgen -workload C -scale 0.01 -o /tmp/c-small.pcap
//
// The same workload, seed and scale always give the same bytes. On success it prints one line:
// "workload A seed 1 scale 1: 1283456 packets, 612 MB, 100000 connections, 18.2 s".
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tcpstate/tcpstate/internal/benchgen"
)

func main() {
	var cfg benchgen.Config
	var out string
	flag.StringVar(&cfg.Workload, "workload", "A", "workload: A (100k short connections), B (1M-SYN flood), C (2M-packet bulk transfer with losses)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed: the same seed gives the same bytes")
	flag.Float64Var(&cfg.Scale, "scale", 1, "size factor (0.01: a hundredth of the full workload)")
	flag.IntVar(&cfg.Snaplen, "snaplen", 0, "cut frames to this many bytes, as tcpdump -s (0: whole frames)")
	flag.IntVar(&cfg.Conns, "conns", 0, "workload A: number of connections (0: from -scale)")
	flag.IntVar(&cfg.Concurrent, "concurrent", 0, "workload A: connections open at once (0: from -scale)")
	flag.StringVar(&out, "o", "", "output pcap `FILE` (required)")
	flag.Parse()
	if out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: benchgen -workload A|B|C [-seed N] [-scale F] -o FILE")
		flag.PrintDefaults()
		os.Exit(2)
	}
	res, err := benchgen.GenerateFile(out, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchgen:", err)
		os.Exit(1)
	}
	fmt.Printf("workload %s seed %d scale %g: %d packets, %.0f MB, %d connections, %.1f s\n",
		cfg.Workload, cfg.Seed, cfg.Scale, res.Packets, float64(res.Bytes)/1e6, res.Conns, res.Duration.Seconds())
}
