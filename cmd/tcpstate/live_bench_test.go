//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/internal/kernellab"
)

// BenchmarkLiveVeth measures what `tcpstate -i` sustains: a blaster in the client namespace
// writes whole synthetic TCP conversations (handshake, 50 request/answer exchanges of 100
// bytes, FIN both ways: 106 frames each, 1000 connections interleaved) onto the client's veth
// at a fixed rate, and tcpstate captures them on the router's end with the JSON stream on.
// Each rate runs for 3 s; the metrics are the rate offered and captured, what the kernel
// dropped (pcap statistics) and lost before the capture, and tcpstate's CPU use.
//
//	go test ./cmd/tcpstate -run '^$' -bench LiveVeth -benchtime 1x   (root)
func BenchmarkLiveVeth(b *testing.B) {
	if err := kernellab.Preflight(); err != nil {
		b.Skipf("needs the namespace lab: %v", err)
	}
	for _, rate := range []int{100_000, 200_000, 400_000, 600_000, 800_000, 1_000_000, 0} {
		name := fmt.Sprintf("pps=%dk", rate/1000)
		if rate == 0 {
			name = "pps=max"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				liveVethRun(b, rate, 3*time.Second)
			}
		})
	}
}

var statsLine = regexp.MustCompile(`(\d+) packets captured \((\d+) TCP\), (\d+) dropped by kernel(?: \(per AF_PACKET socket: [\d ]+\))?, (\d+) dropped by interface; (\d+) connections`)

func liveVethRun(b *testing.B, rate int, d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := kernellab.NewLab(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer lab.Close()
	bin := toolBinary(b)
	stdout, stderr := &countingWriter{}, &syncBuffer{}
	cmd := lab.Router.Command(context.Background(), bin, "-i", kernellab.RouterClientIface, "-o", "json")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Process.Kill()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "listening on") {
		if time.Now().After(deadline) {
			b.Fatalf("tcpstate did not start: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cpu0 := procCPU(cmd.Process.Pid)

	var fd int
	if err := lab.Client.Do(func() error {
		ifi, err := net.InterfaceByName(kernellab.ClientIface)
		if err != nil {
			return err
		}
		fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
		if err != nil {
			return err
		}
		return syscall.Bind(fd, &syscall.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(syscall.ETH_P_ALL)})
	}); err != nil {
		b.Fatal(err)
	}
	defer syscall.Close(fd)

	g := newConvGen(1000, 50)
	start := time.Now()
	sent := 0
	for {
		el := time.Since(start)
		if el >= d {
			break
		}
		target := int(float64(rate) * el.Seconds())
		if rate == 0 {
			target = sent + 256
		}
		if sent >= target {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		for sent < target {
			n, err := g.send(fd, min(target-sent, batch))
			if err != nil {
				b.Fatalf("send: %v", err)
			}
			sent += n
		}
	}
	elapsed := time.Since(start)
	offered := float64(sent) / elapsed.Seconds()
	time.Sleep(300 * time.Millisecond)
	cpu1 := procCPU(cmd.Process.Pid)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("tcpstate: %v\n%s", err, stderr.String())
	}
	m := statsLine.FindStringSubmatch(stderr.String())
	if m == nil {
		b.Fatalf("no statistics line: %s", stderr.String())
	}
	n := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
	captured, kdrop := n(1), n(3)
	b.ReportMetric(offered, "offered-pps")
	b.ReportMetric(captured/elapsed.Seconds(), "captured-pps")
	b.ReportMetric(kdrop, "kernel-dropped")
	b.ReportMetric(float64(sent)-captured-kdrop, "lost-before-capture")
	b.ReportMetric(100*(cpu1-cpu0)/elapsed.Seconds(), "tcpstate-cpu-%")
	b.ReportMetric(n(5), "connections")
	b.Logf("rate %d: sent %d (%.0f/s), captured %.0f, kernel dropped %.0f, %d bytes of JSON; %s", rate, sent, offered, captured, kdrop,
		stdout.n, strings.TrimSpace(stderr.String()))
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)

// procCPU is the CPU time a process has used, in seconds (utime + stime from /proc).
func procCPU(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // USER_HZ
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// batch is how many frames one sendmmsg(2) carries.
const batch = 64

// sysSendmmsg is sendmmsg's number where the syscall package lacks it (0: write one by one).
var sysSendmmsg = map[string]uintptr{"amd64": 307, "arm64": 269, "386": 345}[runtime.GOARCH]

type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

// send writes up to n frames in one system call and returns how many went out.
func (g *convGen) send(fd, n int) (int, error) {
	if sysSendmmsg == 0 {
		for i := 0; i < n; i++ {
			if _, err := syscall.Write(fd, g.next()); err != nil {
				return i, err
			}
		}
		return n, nil
	}
	if g.msgs == nil {
		g.msgs = make([]mmsghdr, batch)
		g.iov = make([]syscall.Iovec, batch)
		g.frames = make([][]byte, batch)
		for i := range g.frames {
			g.frames[i] = make([]byte, len(g.buf))
		}
	}
	for i := 0; i < n; i++ {
		f := g.frames[i][:copy(g.frames[i], g.next())]
		g.iov[i] = syscall.Iovec{Base: &f[0]}
		g.iov[i].SetLen(len(f))
		g.msgs[i] = mmsghdr{hdr: syscall.Msghdr{Iov: &g.iov[i], Iovlen: 1}}
	}
	r, _, e := syscall.Syscall6(sysSendmmsg, uintptr(fd), uintptr(unsafe.Pointer(&g.msgs[0])), uintptr(n), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// convGen writes the frames of many interleaved TCP conversations.
type convGen struct {
	msgs   []mmsghdr
	iov    []syscall.Iovec
	frames [][]byte
	convs  []conv
	turn   int
	port   uint32
	exch   int
	buf    [14 + 20 + 20 + 100]byte
}

type conv struct {
	cip    [4]byte
	cport  uint16
	ic, is uint32 // ISNs
	step   int
}

func newConvGen(n, exchanges int) *convGen {
	g := &convGen{exch: exchanges}
	g.convs = make([]conv, n)
	for i := range g.convs {
		g.renew(&g.convs[i])
	}
	// Ethernet: to a MAC nobody has (the router's packet socket still sees it), from a local one.
	copy(g.buf[0:6], []byte{0x02, 0, 0, 0, 0, 0x01})
	copy(g.buf[6:12], []byte{0x02, 0, 0, 0, 0, 0x02})
	binary.BigEndian.PutUint16(g.buf[12:], 0x0800)
	return g
}

func (g *convGen) renew(c *conv) {
	g.port++
	c.cip = [4]byte{192, 0, 2, byte(10 + g.port/60000%200)}
	c.cport = uint16(1024 + g.port%60000)
	c.ic, c.is = g.port*2654435761, g.port*40503
	c.step = 0
}

// next returns the next frame (valid until the following call).
func (g *convGen) next() []byte {
	c := &g.convs[g.turn]
	g.turn = (g.turn + 1) % len(g.convs)
	const (
		fin = 0x01
		syn = 0x02
		psh = 0x08
		ack = 0x10
	)
	k := g.exch
	s := c.step
	c.step++
	fromClient, flags, seq, ackn, plen := true, uint8(0), uint32(0), uint32(0), 0
	switch {
	case s == 0:
		flags, seq = syn, c.ic
	case s == 1:
		fromClient, flags, seq, ackn = false, syn|ack, c.is, c.ic+1
	case s == 2:
		flags, seq, ackn = ack, c.ic+1, c.is+1
	case s < 3+2*k:
		i := uint32((s - 3) / 2)
		plen = 100
		if (s-3)%2 == 0 {
			flags, seq, ackn = psh|ack, c.ic+1+100*i, c.is+1+100*i
		} else {
			fromClient, flags, seq, ackn = false, psh|ack, c.is+1+100*i, c.ic+1+100*(i+1)
		}
	case s == 3+2*k:
		flags, seq, ackn = fin|ack, c.ic+1+uint32(100*k), c.is+1+uint32(100*k)
	case s == 4+2*k:
		fromClient, flags, seq, ackn = false, fin|ack, c.is+1+uint32(100*k), c.ic+2+uint32(100*k)
	default:
		flags, seq, ackn = ack, c.ic+2+uint32(100*k), c.is+2+uint32(100*k)
		defer g.renew(c) // after this last frame is written
	}
	b := g.buf[:]
	ip := b[14:34]
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(40+plen))
	ip[8], ip[9] = 64, 6
	src, dst := c.cip, [4]byte{198, 51, 100, 2}
	sport, dport := c.cport, uint16(443)
	if !fromClient {
		src, dst, sport, dport = dst, src, dport, sport
	}
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	tcp := b[34:54]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ackn)
	tcp[12], tcp[13] = 5<<4, flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	return b[:54+plen]
}
