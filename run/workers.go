package run

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
)

// Multi-core live capture (--workers N, Linux): N AF_PACKET sockets in one fanout group hashed
// by flow. The kernel hands each flow (both directions, every instance of its 4-tuple) to one
// socket, and each socket's goroutine decodes what it reads and feeds the flow table of the
// segment's 4-tuple, by flowtable.FlowHash as the shards of a file run: its own, but for the
// flows the kernel's hash splits (tunnels). Connection IDs come from one counter. Once a tick
// the driver's goroutine locks every table in turn (a few milliseconds: the rings hold what
// arrives meanwhile) to run the timers, release finished connections and tick the sink.

// liveShard is one AF_PACKET socket and the flow table it feeds.
type liveShard struct {
	mu     sync.Mutex
	src    *capture.Fanout
	tr     *flowtable.Table
	counts capture.Stats // what src read, published by the shard's goroutine (under mu)
}

// NewFanout sets up a live run reading the sockets of a fanout group (capture.OpenFanout),
// each feeding a flow table of its own, handing its results to sink.
func NewFanout(cfg LiveConfig, socks []*capture.Fanout, sink Sink) *Live {
	l := newLive(cfg, sink)
	var ids atomic.Uint64
	tc := l.cfg.Config
	tc.NextID = func() uint64 { return ids.Add(1) }
	for _, sock := range socks {
		sh := &liveShard{src: sock, tr: flowtable.New(tc)}
		l.shards = append(l.shards, sh)
		l.tables = append(l.tables, sh.tr)
	}
	l.src = &fanoutSource{l.shards}
	return l
}

// fanoutSource is the sockets of a fanout group as one LiveSource: Stop, Stats and Errs for all
// of them (Poll is each shard's own).
type fanoutSource struct{ shards []*liveShard }

func (f *fanoutSource) Poll(*capture.Segment) (bool, bool) { return false, false }
func (f *fanoutSource) Flush() error                       { return nil }
func (f *fanoutSource) Stats() capture.Stats               { return capture.Stats{} } // (Live.captureStats adds them up)
func (f *fanoutSource) Stop() {
	for _, sh := range f.shards {
		sh.src.Stop()
	}
}

func (f *fanoutSource) Errs() []*capture.ReadError {
	var errs []*capture.ReadError
	for _, sh := range f.shards {
		errs = append(errs, sh.src.Errs()...)
	}
	return errs
}

// runShards is Run's loop with workers: each shard reads and tracks in its goroutine; this
// one ticks until they have all ended.
func (l *Live) runShards() {
	var wg sync.WaitGroup
	for _, sh := range l.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.readShard(sh)
		}()
	}
	ended := make(chan struct{})
	go func() { wg.Wait(); close(ended) }()
	tick := time.NewTicker(l.cfg.Refresh / 20)
	defer tick.Stop()
	for {
		select {
		case <-ended:
			return
		case <-tick.C:
		}
		l.poll()
	}
}

// readShard reads one socket until it ends.
func (l *Live) readShard(sh *liveShard) {
	var seg capture.Segment
	n := len(l.shards)
	for {
		got, open := sh.src.Poll(&seg)
		// The shard of the segment's 4-tuple (its inner one, for a tunnel), by the hash the
		// file path shards by: usually this socket's own, as the kernel hands a flow to one
		// socket; not always (the outer UDP ports of a VXLAN tunnel differ by direction, and
		// the kernel hashes those).
		dst := sh
		if got && n > 1 {
			dst = l.shards[flowtable.ShardOf(flowtable.FlowHash(seg.Src, seg.Dst), n)]
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
}
