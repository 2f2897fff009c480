// Package benchgen writes synthetic, reproducible pcap workloads for benchmarking tcpstate
// against itself (the read-only decode pass) and against the peer tools (tcptrace, tshark,
// tcpdump). A workload is a function of its name, seed and scale only: the same Config gives
// the same bytes, on every run and machine (with the same Go release).
//
// The traffic is what a tap in front of the servers would record from Linux hosts: Ethernet,
// IPv4 with DF and correct checksums, TCP handshakes carrying MSS, SACK-permitted, timestamps
// and window scale, consistent sequence and acknowledgment numbers, scaled windows, delayed
// ACKs, FIN closes.
//
//   - A: many short request/response connections, interleaved (100,000 connections, ~2,000
//     open at any time, ~1.3 million packets): the flow table under churn.
//   - B: a SYN flood: 1,000,000 SYNs from distinct spoofed sources, never answered.
//   - C: one long bulk transfer (2 million packets) with random and burst losses behind the
//     tap, SACK dup ACKs, fast retransmits and the odd timeout: the per-connection hot path.
package benchgen

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Workloads lists the workload names Generate accepts.
func Workloads() []string { return []string{"A", "B", "C"} }

// Full-scale sizes (Scale 1).
const (
	FullConnsA      = 100_000
	FullConcurrentA = 2_000
	FullSYNsB       = 1_000_000
	FullPacketsC    = 2_000_000
)

// Config selects a workload.
type Config struct {
	Workload string  // "A", "B" or "C"
	Seed     uint64  // same seed, same bytes
	Scale    float64 // multiplies the workload's size; 0 means 1 (the full workload)
	// Snaplen cuts each captured frame, as tcpdump -s does; 0 keeps whole frames.
	Snaplen int

	// Workload A only: the number of connections and how many are open at once. Zero means
	// the full-scale value times Scale.
	Conns, Concurrent int
}

// Result describes what was written.
type Result struct {
	Packets int64 // packet records
	Bytes   int64 // bytes of the file
	// Conns is the number of connections: complete ones in A, SYNs (one per source) in B,
	// one in C.
	Conns    int
	Duration time.Duration // from the first packet to the last
}

// Start is when every workload's capture starts: fixed, never the wall clock.
func Start() time.Time { return time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC) }

func (c Config) scale() float64 {
	if c.Scale <= 0 {
		return 1
	}
	return c.Scale
}

func scaled(full int, s float64) int { return max(1, int(math.Round(float64(full)*s))) }

// sizesA returns workload A's number of connections and how many are open at once.
func (c Config) sizesA() (conns, concurrent int) {
	conns, concurrent = c.Conns, c.Concurrent
	if conns <= 0 {
		conns = scaled(FullConnsA, c.scale())
	}
	if concurrent <= 0 {
		concurrent = scaled(FullConcurrentA, c.scale())
	}
	return conns, min(concurrent, conns)
}

// ExpectedConns is how many connections the workload holds (see Result.Conns), known before
// generating it.
func (c Config) ExpectedConns() int {
	switch strings.ToUpper(c.Workload) {
	case "A":
		n, _ := c.sizesA()
		return n
	case "B":
		return scaled(FullSYNsB, c.scale())
	case "C":
		return 1
	}
	return 0
}

// Generate writes the workload to w as a pcap file.
func Generate(w io.Writer, cfg Config) (Result, error) {
	r := newRNG(cfg.Seed, 0)
	fill := newFiller(r, 1448)
	pw, err := newPCAPWriter(w, cfg.Snaplen, Start().UnixNano(), fill)
	if err != nil {
		return Result{}, err
	}
	var res Result
	switch strings.ToUpper(cfg.Workload) {
	case "A":
		res, err = genA(pw, r, cfg)
	case "B":
		res, err = genB(pw, r, cfg)
	case "C":
		res, err = genC(pw, r, cfg)
	default:
		return Result{}, fmt.Errorf("unknown workload %q: use %s", cfg.Workload, strings.Join(Workloads(), ", "))
	}
	if err == nil {
		err = pw.flush()
	}
	res.Packets, res.Bytes, res.Duration = pw.packets, pw.bytes+24, time.Duration(pw.lastAt)
	return res, err
}

// GenerateFile writes the workload to path, replacing it only once it is complete.
func GenerateFile(path string, cfg Config) (Result, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return Result{}, err
	}
	res, err := Generate(tmp, cfg)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return Result{}, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// rng is the generators' only source of randomness: PCG, seeded from Config.Seed.
type rng struct{ *rand.Rand }

func newRNG(seed, stream uint64) *rng {
	return &rng{rand.New(rand.NewPCG(seed, 0x7463707374617465^stream))}
}

// between returns a uniform integer in [lo, hi].
func (r *rng) between(lo, hi int64) int64 { return lo + r.Int64N(hi-lo+1) }

// exp returns an exponentially distributed duration with the given mean, in nanoseconds.
func (r *rng) exp(mean time.Duration) int64 { return int64(r.ExpFloat64() * float64(mean)) }

// chance reports true with probability p.
func (r *rng) chance(p float64) bool { return r.Float64() < p }

// tsClock is a host's TCP timestamp clock: Linux ticks it every millisecond from a random
// per-connection offset.
type tsClock uint32

func (c tsClock) at(t int64) uint32 { return uint32(c) + uint32(t/int64(time.Millisecond)) }
