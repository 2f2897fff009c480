package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/tcpstate/tcpstate/capture"
	runner "github.com/tcpstate/tcpstate/run"
	"github.com/tcpstate/tcpstate/tracker"
)

// Multi-core live capture (--workers N, Linux): N AF_PACKET sockets in one fanout group hashed
// by flow, each feeding a flow table of its own (run.NewFanout says how). Here: which path a
// capture takes, and opening the sockets.

// livePathWhy says why a live capture goes through libpcap ("" when AF_PACKET sockets serve).
func livePathWhy(o *options, cfg capture.LiveConfig) string {
	switch {
	case o.libpcap:
		return "--libpcap"
	case o.write != "":
		return "-w saves what libpcap captures"
	case o.count != 0:
		return "-c counts what libpcap captures"
	}
	return capture.FanoutWhyNot(cfg)
}

// runFanout is `tcpstate -i IFACE` on AF_PACKET sockets.
func runFanout(o *options, cfg capture.LiveConfig, names tracker.Naming, prof tracker.Profile, failOn map[string]bool, cf *connFilter, stdout, stderr io.Writer) error {
	n := o.workers
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	socks, err := capture.OpenFanout(cfg, n)
	if err != nil {
		return &exitError{2, err.Error()}
	}
	closeAll := func() error {
		for _, s := range socks {
			s.Close()
		}
		return nil
	}
	defer closeAll()
	if o.user != "" {
		if err := dropPrivileges(o.user, stderr); err != nil {
			return &exitError{2, err.Error()}
		}
	}
	s := newLiveSession(o, names, prof, failOn, nil, stdout, stderr)
	s.cf = cf
	s.driver = func(cfg runner.LiveConfig, sink runner.Sink) *runner.Live { return runner.NewFanout(cfg, socks, sink) }
	if s.fleet, err = startFleet(o, s.ropts, stderr); err != nil {
		return err
	}
	defer s.fleet.close()
	if s.view == nil && !o.quiet {
		snap := cfg.Snaplen
		if snap == 0 {
			snap = 262144
		}
		fmt.Fprintf(stderr, "tcpstate: listening on %s (AF_PACKET, %d socket(s) in a fanout group hashed by flow), link-type EN10MB (Ethernet), snapshot length %d bytes\n",
			o.iface, n, snap)
	}
	return s.capture(closeAll)
}
