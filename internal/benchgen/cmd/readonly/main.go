// Command readonly is the practical ceiling for tcpstate's speed: it reads captures exactly as
// tcpstate does (capture.OpenFiles: pcap/pcapng, merge, decode to Segments) and only counts
// the segments, with no tracking and no output. scripts/bench.sh compares tcpstate with it.
//
//	go run ./internal/benchgen/cmd/readonly FILE...
//
// It prints "N segments (P packets read)" and exits 2 if an input is unreadable or damaged.
package main

import (
	"fmt"
	"os"

	"github.com/tcpstate/tcpstate/capture"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: readonly FILE...")
		os.Exit(2)
	}
	src, err := capture.OpenFiles(os.Args[1:], capture.Config{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "readonly:", err)
		os.Exit(2)
	}
	defer src.Close()
	var seg capture.Segment
	var n uint64
	for src.Next(&seg) {
		n++
	}
	fmt.Printf("%d segments (%d packets read)\n", n, src.Stats().Packets)
	if errs := src.Errs(); len(errs) > 0 {
		for _, e := range errs {
			fmt.Fprintln(os.Stderr, "readonly:", e)
		}
		os.Exit(2)
	}
}
