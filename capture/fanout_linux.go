//go:build linux

package capture

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// Multi-core live capture on Linux: N AF_PACKET sockets (TPACKET_V3 rings) in one fanout group
// hashed by flow (PACKET_FANOUT_HASH, with defragmentation so that a fragmented datagram hashes
// as its flow). The kernel's flow hash is symmetric: both directions of a 4-tuple, and every
// instance of it, reach the same socket, so each socket can feed a tracker of its own, as the
// shards of a file run each get whole flows. The filter is the one libpcap compiles for the
// link, attached to each socket (the kernel runs it, as with libpcap).

// FanoutWhyNot says why AF_PACKET fanout cannot capture what cfg asks for ("" when it can):
// then capture through libpcap (OpenLive).
func FanoutWhyNot(cfg LiveConfig) string {
	if cfg.Interface == "any" {
		return "-i any is captured through libpcap (the cooked 'any' device)"
	}
	if strings.Contains(cfg.Filter, "vlan") || strings.Contains(cfg.Filter, "mpls") {
		// libpcap compiles vlan/mpls tests for a live Linux socket with ancillary-data loads
		// (the kernel strips the tag); a program compiled offline would test the packet bytes.
		return "vlan/mpls filters keep libpcap's own semantics"
	}
	data, err := os.ReadFile("/sys/class/net/" + cfg.Interface + "/type")
	if err != nil {
		return "" // OpenFanout says what is wrong with the interface
	}
	switch strings.TrimSpace(string(data)) {
	case "1", "772": // ARPHRD_ETHER, ARPHRD_LOOPBACK: Ethernet framing
		return ""
	}
	return "the interface is not Ethernet (libpcap knows its link type)"
}

// Fanout is one socket of a fanout group: a Source like Live, read by one goroutine.
type Fanout struct {
	iface   string
	tp      *afpacket.TPacket
	snaplen int
	dec     decoder
	worker  int

	stopReq atomic.Int64
	ended   bool
	closed  bool
	records uint64
	stats   Stats
	drops   uint64 // kernel drops as of Close
	errs    []*ReadError
}

var fanoutGroup atomic.Uint32

// OpenFanout opens n AF_PACKET sockets on cfg.Interface in one new fanout group hashed by flow.
// Each gets a ring of cfg.BufferSize bytes (0: 32 MiB).
func OpenFanout(cfg LiveConfig, n int) ([]*Fanout, error) {
	if cfg.Interface == "" {
		return nil, errors.New("no interface given; list them with tcpstate -D")
	}
	if cfg.Snaplen == 0 {
		cfg.Snaplen = maxRecordLen
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 32 << 20
	}
	if cfg.Filter != "" {
		if _, err := newFilter(cfg.Filter); err != nil {
			return nil, err
		}
	}
	// The filter, with the snapshot length as its accept value (as libpcap attaches it).
	prog, err := pcap.CompileBPFFilter(layers.LinkTypeEthernet, cfg.Snaplen, cfg.Filter)
	if err != nil {
		return nil, fmt.Errorf("bad filter expression %q for %s: %v; the syntax is tcpdump's (see man pcap-filter)", cfg.Filter, cfg.Interface, err)
	}
	raw := make([]bpf.RawInstruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	if t, _ := os.ReadFile("/sys/class/net/" + cfg.Interface + "/type"); strings.TrimSpace(string(t)) == "772" {
		// Loopback: each packet passes the socket twice, going out and coming in. libpcap
		// keeps only the second; so do we: reject PACKET_OUTGOING (the packet type, an
		// ancillary load) ahead of the filter (its jumps are relative: they stay right).
		raw = append([]bpf.RawInstruction{
			{Op: 0x20, K: 0xfffff000 + 4},  // ld pkttype (SKF_AD_OFF + SKF_AD_PKTTYPE)
			{Op: 0x15, Jt: 0, Jf: 1, K: 4}, // jeq PACKET_OUTGOING
			{Op: 0x06, K: 0},               // ret #0: dropped
		}, raw...)
	}
	const block = 1 << 20
	blocks := max(cfg.BufferSize/block, 2)
	// A fanout group id unique to this process and call: another tcpstate (or tcpdump with
	// fanout) on the same interface must not share our packets.
	group := uint16(os.Getpid()*7+int(fanoutGroup.Add(1))) & 0xffff
	var out []*Fanout
	fail := func(err error) ([]*Fanout, error) {
		for _, f := range out {
			f.Close()
		}
		return nil, err
	}
	for w := range n {
		tp, err := afpacket.NewTPacket(afpacket.OptInterface(cfg.Interface), afpacket.TPacketVersion3,
			afpacket.OptFrameSize(afpacket.DefaultFrameSize), afpacket.OptBlockSize(block), afpacket.OptNumBlocks(blocks),
			afpacket.OptBlockTimeout(cfg.ReadTimeout), afpacket.OptPollTimeout(cfg.ReadTimeout), afpacket.OptAddVLANHeader(true))
		if err != nil {
			return fail(fanoutError(cfg.Interface, err))
		}
		f := &Fanout{iface: cfg.Interface, tp: tp, snaplen: cfg.Snaplen, worker: w,
			dec: decoder{verifyChecksums: cfg.VerifyChecksums, noDecap: cfg.NoDecap}}
		out = append(out, f)
		if err := tp.SetBPF(raw); err != nil {
			return fail(fmt.Errorf("%s: the kernel refused the compiled filter %q: %v; add --libpcap to capture through libpcap", cfg.Interface, cfg.Filter, err))
		}
		if err := tp.SetFanout(afpacket.FanoutHash|afpacket.FanoutHashWithDefrag, group); err != nil {
			return fail(fmt.Errorf("%s: cannot join an AF_PACKET fanout group: %v; add --libpcap to capture through libpcap", cfg.Interface, err))
		}
		if cfg.Promisc && w == 0 {
			tp.SetPromiscuous(true) // best effort, as libpcap: a veth or lo has no such mode to refuse
		}
	}
	return out, nil
}

func fanoutError(iface string, err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		exe, _ := os.Executable()
		if exe == "" {
			exe = "tcpstate"
		}
		return fmt.Errorf("%s: permission denied: capturing packets needs the CAP_NET_RAW capability; run as root (sudo tcpstate -i %s ...), or give this binary the capability once: sudo setcap cap_net_raw,cap_net_admin=eip %s",
			iface, iface, exe)
	case errors.Is(err, syscall.ENODEV), strings.Contains(err.Error(), "no such network interface"):
		return fmt.Errorf("%s: no such interface; list the interfaces with tcpstate -D", iface)
	}
	return fmt.Errorf("%s: cannot open an AF_PACKET socket: %v (add --libpcap to capture through libpcap)", iface, err)
}

// Interface is the name the capture was opened on.
func (f *Fanout) Interface() string { return f.iface }

// Stop ends the capture from any goroutine; what the ring holds is still delivered.
func (f *Fanout) Stop() { f.stopReq.CompareAndSwap(0, time.Now().UnixNano()) }

// Poll is Live.Poll for one socket of the group.
func (f *Fanout) Poll(seg *Segment) (got, open bool) {
	if f.ended {
		return false, false
	}
	for n := 0; ; n++ {
		stopping := f.stopReq.Load()
		if stopping != 0 && time.Since(time.Unix(0, stopping)) > maxDrain {
			f.ended = true
			return false, false
		}
		data, ci, err := f.tp.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, afpacket.ErrTimeout) || errors.Is(err, syscall.EINTR) {
				if stopping != 0 {
					f.ended = true
					return false, false
				}
				return false, true
			}
			f.ended = true
			f.errs = append(f.errs, &ReadError{File: f.iface,
				Err: fmt.Errorf("the capture (AF_PACKET socket %d) stopped after %d packet(s): %v", f.worker, f.records, err)})
			return false, false
		}
		f.records++
		f.stats.Packets++
		f.stats.Bytes += int64(len(data))
		if liveDecode(&f.dec, &f.stats, linkEthernet, data, &ci, f.records, seg) {
			return true, true
		}
		if n >= idleBatch {
			return false, true
		}
	}
}

// Stats counts what this socket read, with the kernel's drops (packets its ring had no room
// for). AF_PACKET does not report the interface's own drops. Like Poll, it belongs to the
// socket's goroutine; Counts and KernelDropped may be called from others (see each).
func (f *Fanout) Stats() Stats {
	st := f.stats
	st.KernelDropped = f.KernelDropped()
	return st
}

// Counts is Stats without the kernel's counters: cheap (no system call), for the reading
// goroutine to publish after each Poll.
func (f *Fanout) Counts() Stats { return f.stats }

// KernelDropped is the packets the kernel dropped for want of room in this socket's ring. Safe
// to call from any goroutine while the socket is open.
func (f *Fanout) KernelDropped() uint64 {
	if f.closed {
		return f.drops
	}
	if _, v3, err := f.tp.SocketStats(); err == nil {
		return uint64(v3.Drops())
	}
	return 0
}

// Errs reports why the capture ended, when an error ended it.
func (f *Fanout) Errs() []*ReadError { return f.errs }

// Flush: nothing is saved (-w captures through libpcap).
func (f *Fanout) Flush() error { return nil }

// Close releases the socket; the statistics stay readable.
func (f *Fanout) Close() error {
	if f.closed {
		return nil
	}
	f.drops = f.KernelDropped()
	f.closed, f.ended = true, true
	f.tp.Close()
	return nil
}
