package main

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/tracker"
)

// Multi-core live capture (--workers N, Linux): N AF_PACKET sockets in one fanout group hashed
// by flow. The kernel hands each flow (both directions, every instance of its 4-tuple) to one
// socket, and each socket's goroutine decodes what it reads and feeds the tracker shard of the
// segment's 4-tuple, by flowtable.FlowHash as the shards of a file run: its own, but for the
// flows the kernel's hash splits (tunnels). Connection IDs come from one counter. Once a second the
// session's goroutine locks every shard in turn (a few milliseconds: the rings hold what
// arrives meanwhile) to run the timers, write out finished connections, refresh the view and
// the metrics.

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

// liveShard is one AF_PACKET socket and the tracker it feeds.
type liveShard struct {
	mu     sync.Mutex
	src    *capture.Fanout
	tr     *flowtable.Table
	counts capture.Stats // what src read, published by the shard's goroutine (under mu)
}

// fanoutSource is the sockets of a fanout group as the session's liveSource: Stop, Stats and
// Errs for all of them (Poll is each shard's own).
type fanoutSource struct{ shards []*liveShard }

func (f *fanoutSource) Poll(*capture.Segment) (bool, bool) { return false, false }
func (f *fanoutSource) Flush() error                       { return nil }
func (f *fanoutSource) Stop() {
	for _, sh := range f.shards {
		sh.src.Stop()
	}
}

// Stats adds up the sockets' statistics: call it with the shards held (tick) or their
// goroutines ended.
func (f *fanoutSource) Stats() capture.Stats {
	var st capture.Stats
	for _, sh := range f.shards {
		c := sh.counts
		st.Packets += c.Packets
		st.Bytes += c.Bytes
		st.TCP += c.TCP
		st.NonTCP += c.NonTCP
		st.Fragments += c.Fragments
		st.Truncated += c.Truncated
		st.KernelDropped += sh.src.KernelDropped()
	}
	return st
}

func (f *fanoutSource) Errs() []*capture.ReadError {
	var errs []*capture.ReadError
	for _, sh := range f.shards {
		errs = append(errs, sh.src.Errs()...)
	}
	return errs
}

// runFanout is `tcpstate -i IFACE` on AF_PACKET sockets.
func runFanout(o *options, cfg capture.LiveConfig, names tracker.Naming, prof tracker.Profile, failOn map[string]bool, stdout, stderr io.Writer) error {
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
	src := &fanoutSource{}
	s := newLiveSession(o, names, prof, failOn, src, stdout, stderr)
	var ids atomic.Uint64
	cfgT := s.trackerConfig()
	cfgT.NextID = func() uint64 { return ids.Add(1) }
	for _, sock := range socks {
		src.shards = append(src.shards, &liveShard{src: sock, tr: flowtable.New(cfgT)})
	}
	s.tr, s.shards = nil, src.shards
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
	return s.capture(src.Stop, closeAll)
}

// trackerConfig is the setup of the session's tracker(s).
func (s *liveSession) trackerConfig() flowtable.Config {
	cfg := flowtable.Config{Profile: s.ropts.Profile, OS: s.o.osPolicy}
	if s.o.output == "events" {
		cfg.OnEvent = func(e tracker.Event) {
			s.outMu.Lock() // workers' trackers write events each from its goroutine
			report.WriteEvent(s.out, &e, s.ropts)
			s.flush()
			s.outMu.Unlock()
		}
	}
	return cfg
}

// runShards is run's loop with workers: each shard reads and tracks in its goroutine; this
// one ticks until they have all ended.
func (s *liveSession) runShards() error {
	var wg sync.WaitGroup
	for _, sh := range s.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seg capture.Segment
			n := len(s.shards)
			for {
				got, open := sh.src.Poll(&seg)
				// The shard of the segment's 4-tuple (its inner one, for a tunnel), by the
				// hash the file path shards by: usually this socket's own, as the kernel
				// hands a flow to one socket; not always (the outer UDP ports of a VXLAN
				// tunnel differ by direction, and the kernel hashes those).
				dst := sh
				if got && n > 1 {
					dst = s.shards[flowtable.ShardOf(flowtable.FlowHash(seg.Src, seg.Dst), n)]
				}
				if got && dst != sh {
					dst.mu.Lock()
					dst.tr.Add(&seg)
					dst.mu.Unlock()
				}
				sh.mu.Lock()
				if got && dst == sh {
					sh.tr.Add(&seg)
				}
				sh.counts = sh.src.Counts()
				sh.mu.Unlock()
				if !open {
					return
				}
			}
		}()
	}
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	tick := time.NewTicker(refreshEvery / 20)
	defer tick.Stop()
	for {
		select {
		case <-ended:
			return s.finish()
		case <-tick.C:
		}
		if s.tickDue.Swap(false) {
			s.tick(time.Now())
		}
		if s.writeErr != nil {
			s.src.Stop()
		}
	}
}

// lockAll and unlockAll hold every shard still (nothing without workers).
func (s *liveSession) lockAll() {
	for _, sh := range s.shards {
		sh.mu.Lock()
	}
}

func (s *liveSession) unlockAll() {
	for _, sh := range s.shards {
		sh.mu.Unlock()
	}
}

// trackers is the session's tracker(s).
func (s *liveSession) trackers() []*flowtable.Table {
	if s.shards == nil {
		return []*flowtable.Table{s.tr}
	}
	trs := make([]*flowtable.Table, len(s.shards))
	for i, sh := range s.shards {
		trs[i] = sh.tr
	}
	return trs
}

// conns is every connection tracked, in ID order (call with the shards held).
func (s *liveSession) conns() []*tracker.Conn {
	if s.shards == nil {
		return s.tr.Conns()
	}
	var all []*tracker.Conn
	for _, sh := range s.shards {
		all = append(all, sh.tr.Conns()...)
	}
	slices.SortFunc(all, func(a, b *tracker.Conn) int { return cmp.Compare(a.ID, b.ID) })
	return all
}

// connections is how many connections were seen in all.
func (s *liveSession) connections() uint64 {
	var n uint64
	for _, tr := range s.trackers() {
		n += tr.Stats().Connections
	}
	return n
}

// captureStats is the capture's statistics, per capture socket.
func (s *liveSession) captureStats() []capture.Stats {
	if s.shards == nil {
		return []capture.Stats{s.src.Stats()}
	}
	out := make([]capture.Stats, len(s.shards))
	for i, sh := range s.shards {
		out[i] = sh.counts // (the shards are held: see tick)
		out[i].KernelDropped = sh.src.KernelDropped()
	}
	return out
}

// workerDrops is the kernel's drops per AF_PACKET socket (nil with one libpcap reader).
func (s *liveSession) workerDrops() []uint64 {
	if s.shards == nil {
		return nil
	}
	d := make([]uint64, len(s.shards))
	for i, sh := range s.shards {
		d[i] = sh.src.KernelDropped()
	}
	return d
}
