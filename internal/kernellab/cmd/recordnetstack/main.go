// Command recordnetstack records the lab's netstack scenarios: the same client—router—server
// namespaces as the kernel recordings, with gVisor's netstack (internal/netstackhost) on the
// client, the server, or both, and each end's own view of its sockets saved as the truth.
//
//	go run ./internal/kernellab/cmd/recordnetstack -out testdata/pcaps/netstack [-only NAME,...]
//
// It needs root, and Go to build internal/netstackhost (its own module; the first build
// downloads gVisor through the module proxy and compiles it, about 30 s).
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
	out := flag.String("out", "testdata/pcaps/netstack", "directory that receives one sub-directory per scenario")
	only := flag.String("only", "", "comma-separated scenario names (default: all)")
	parallel := flag.Int("parallel", 3, "scenarios recorded at once, each in its own namespaces")
	list := flag.Bool("list", false, "list the scenarios and exit")
	flag.Parse()
	if *list {
		for _, s := range kernellab.NetstackScenarios() {
			fmt.Printf("%-44s %s\n", s.Name, s.Description)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	t0 := time.Now()
	metas, err := kernellab.RecordNetstack(ctx, *out, names, false, *parallel,
		func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) })
	n := 0
	for _, m := range metas {
		if m != nil {
			n++
		}
	}
	fmt.Fprintf(os.Stderr, "recorded %d scenario(s) into %s in %.1fs\n", n, *out, time.Since(t0).Seconds())
	if err != nil {
		fmt.Fprintf(os.Stderr, "recordnetstack: %v\n", err)
		os.Exit(1)
	}
}
