// Command record records the kernel ground truth of tcpstate: for every scenario it builds a
// client—router—server set of network namespaces, drives real kernel TCP sockets, captures the
// traffic with tcpdump in the router, and saves ss snapshots of both ends next to the capture.
//
//	go run ./internal/kernellab/cmd/record -out testdata/pcaps/kernel [-only NAME,...]
//
// It needs root. Namespaces are named tsl<random>-{c,r,s} and are removed on exit, also on
// SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tcpstate/tcpstate/internal/kernellab"
)

func main() {
	out := flag.String("out", "testdata/pcaps/kernel", "directory that receives one sub-directory per scenario")
	only := flag.String("only", "", "comma-separated scenario names (default: all)")
	parallel := flag.Int("parallel", 3, "scenarios recorded at once, each in its own namespaces")
	retries := flag.Int("retries", 1, "extra attempts for a scenario whose recording does not show its intent")
	list := flag.Bool("list", false, "list the scenarios and exit")
	tap := flag.String("tap", "", "record the selected scenarios with tcpdump at this tap instead, into <name>-at-<tap>: "+
		"router (client-facing router interface, the default tap), router-server, client or server (tcpdump on that host's own interface), span (both router interfaces merged)")
	skipSlow := flag.Bool("skip-slow", false, "leave out the scenarios marked slow (when -only is not given)")
	flag.Parse()
	if *list {
		for _, s := range kernellab.Scenarios() {
			slow := ""
			if s.Slow {
				slow = " [slow]"
			}
			fmt.Printf("%-34s %s%s\n", s.Name, s.Description, slow)
		}
		return
	}
	if err := kernellab.Preflight(); err != nil {
		fmt.Fprintf(os.Stderr, "record: cannot record here: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	t0 := time.Now()
	metas, err := kernellab.RecordAll(ctx, *out, kernellab.RecordOptions{
		Only: names, Parallel: *parallel, Retries: *retries, Tap: *tap, SkipSlow: *skipSlow,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
	})
	n := 0
	for _, m := range metas {
		if m != nil {
			n++
		}
	}
	fmt.Fprintf(os.Stderr, "recorded %d scenario(s) into %s in %.1fs\n", n, *out, time.Since(t0).Seconds())
	if err != nil {
		fmt.Fprintf(os.Stderr, "record: %v\n", err)
		os.Exit(1)
	}
}
