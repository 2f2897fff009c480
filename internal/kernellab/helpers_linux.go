package kernellab

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Socket options for TCP Fast Open (include/uapi/linux/tcp.h).
const (
	sockoptTCPFastOpen        = 23 // TCP_FASTOPEN: server, queue length of pending TFO requests
	sockoptTCPFastOpenConnect = 30 // TCP_FASTOPEN_CONNECT: client, connect() defers the SYN to the first write
)

// TFOListen enables Fast Open on a listener (TCP_FASTOPEN, qlen pending requests).
func TFOListen(qlen int) SockOpt {
	return func(s *Sock) error { return s.SetInt(syscall.IPPROTO_TCP, sockoptTCPFastOpen, qlen) }
}

// TFOConnect sets TCP_FASTOPEN_CONNECT: with a cached cookie connect() returns at once and
// the first write sends the SYN with the data; without one, the SYN asks for a cookie.
func TFOConnect() SockOpt {
	return func(s *Sock) error { return s.SetInt(syscall.IPPROTO_TCP, sockoptTCPFastOpenConnect, 1) }
}

// body returns n bytes of printable payload.
func body(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
		if i%64 == 63 {
			b[i] = '\n'
		}
	}
	return string(b)
}

// WaitSS polls `ss -tan` in ns until the socket local > peer shows state (canonical; CLOSED
// means no row). Use it for sockets whose descriptor is closed (orphans, TIME_WAIT).
func (r *Run) WaitSS(ns Netns, local, peer netip.AddrPort, state string, timeout time.Duration) error {
	var last string
	err := waitFor(r.Ctx, timeout, "", func() (bool, error) {
		out, err := r.Lab.SS(r.Ctx, ns, "-tan")
		if err != nil {
			return false, err
		}
		rows, err := ParseSS(strings.NewReader(out))
		if err != nil {
			return false, err
		}
		last = "CLOSED"
		if row, ok := lookupRow(rows, local, peer); ok {
			last = row.Canonical()
		}
		if last == state {
			return true, nil
		}
		time.Sleep(5 * time.Millisecond)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("%s %s > %s: want %s, ss still shows %s: %w", ns.Name, local, peer, state, last, err)
	}
	return nil
}

// NextSeq returns the sequence number following the last segment from src to dst that the tap
// has seen so far (the receiver's RCV.NXT once that segment has arrived), and the number of
// such segments.
func (r *Run) NextSeq(src, dst netip.AddrPort) (uint32, int, error) {
	info, err := r.Lab.LiveCapture()
	if err != nil {
		return 0, 0, err
	}
	var nxt uint32
	n := 0
	for _, p := range info.TCP {
		if p.Src != src || p.Dst != dst || p.Has(FlagRST) {
			continue
		}
		end := p.Seq + uint32(p.PayloadLen)
		if p.Has(FlagSYN) {
			end++
		}
		if p.Has(FlagFIN) {
			end++
		}
		if n == 0 || int32(end-nxt) > 0 {
			nxt = end
		}
		n++
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("no segment %s > %s on the tap yet", src, dst)
	}
	return nxt, n, nil
}

// DropCounts returns the packet counters of the DROP rules of chain in ns (iptables -L -v -x).
func (r *Run) DropCounts(ns Netns, v6 bool, chain string) ([]int, error) {
	out, err := r.Lab.FirewallIn(r.Ctx, ns, v6, "-L", chain, "-v", "-x", "-n")
	if err != nil {
		return nil, err
	}
	var counts []int
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "DROP" {
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return nil, fmt.Errorf("iptables counters: %q", line)
			}
			counts = append(counts, n)
		}
	}
	return counts, nil
}

// sinceStart lists packet times relative to the first one, for notes.
func sinceStart(ps []Packet) string {
	var b []string
	for _, p := range ps {
		b = append(b, fmt.Sprintf("%.3f", p.Time.Sub(ps[0].Time).Seconds()))
	}
	return strings.Join(b, ", ")
}

func filter(info *CaptureInfo, f func(Packet) bool) []Packet {
	var out []Packet
	for _, p := range info.TCP {
		if f(p) {
			out = append(out, p)
		}
	}
	return out
}
