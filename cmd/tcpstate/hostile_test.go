package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/flowtable"
	"github.com/tcpstate/tcpstate/reassembly"
	"github.com/tcpstate/tcpstate/report"
	"github.com/tcpstate/tcpstate/tracker"
	"github.com/tcpstate/tcpstate/zeek"
)

// Hostile traffic (SPEC: floods and crafted headers must never crash tcpstate or grow its
// memory without bound). The captures are generated here, byte by byte, by a small pcap writer:
// no kernel sends these packets, and gopacket stays out of everything but capture.

// hostileWriter writes a classic pcap file (little endian, microseconds).
type hostileWriter struct {
	w   *bufio.Writer
	sec uint32
	us  uint32
	n   int
	hdr [16]byte
}

func newHostileWriter(w io.Writer, link uint32) *hostileWriter {
	hw := &hostileWriter{w: bufio.NewWriterSize(w, 1<<16), sec: 1_800_000_000}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], 262144) // snaplen
	binary.LittleEndian.PutUint32(h[20:], link)
	hw.w.Write(h[:])
	return hw
}

// advance moves the clock by d (negative: backwards, as merged or misordered captures do).
func (hw *hostileWriter) advance(d time.Duration) {
	t := int64(hw.sec)*1e6 + int64(hw.us) + d.Microseconds()
	hw.sec, hw.us = uint32(t/1e6), uint32(t%1e6)
}

// record writes one packet: frame is what was captured, orig its length on the wire.
func (hw *hostileWriter) record(frame []byte, orig int) {
	binary.LittleEndian.PutUint32(hw.hdr[0:], hw.sec)
	binary.LittleEndian.PutUint32(hw.hdr[4:], hw.us)
	binary.LittleEndian.PutUint32(hw.hdr[8:], uint32(len(frame)))
	binary.LittleEndian.PutUint32(hw.hdr[12:], uint32(max(orig, len(frame))))
	hw.w.Write(hw.hdr[:])
	hw.w.Write(frame)
	hw.n++
}

func (hw *hostileWriter) flush() error { return hw.w.Flush() }

// Frame builders: each appends to b and returns it.

func hEther(b []byte, etype uint16) []byte {
	b = append(b, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2)
	return binary.BigEndian.AppendUint16(b, etype)
}

// hIPv4 appends an IPv4 header: ihl in 32-bit words (options are NOPs), total as claimed.
func hIPv4(b []byte, src, dst netip.Addr, ihl int, total int, frag uint16, proto byte) []byte {
	b = append(b, 0x40|byte(ihl&15), 0)
	b = binary.BigEndian.AppendUint16(b, uint16(total))
	b = append(b, 0, 1)
	b = binary.BigEndian.AppendUint16(b, frag)
	b = append(b, 64, proto, 0, 0)
	s, d := src.As4(), dst.As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	for i := 20; i < ihl*4; i++ {
		b = append(b, 1)
	}
	return b
}

func hIPv6(b []byte, src, dst netip.Addr, plen int, next byte) []byte {
	b = append(b, 0x60, 0, 0, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(plen))
	b = append(b, next, 64)
	s, d := src.As16(), dst.As16()
	b = append(b, s[:]...)
	return append(b, d[:]...)
}

// hTCP appends a TCP header whose data offset field says doff (0-15) words, followed by opts
// as given (which may be shorter or longer than the offset claims).
func hTCP(b []byte, sp, dp uint16, seq, ack uint32, flags byte, doff int, win uint16, opts []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, sp)
	b = binary.BigEndian.AppendUint16(b, dp)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = binary.BigEndian.AppendUint32(b, ack)
	b = append(b, byte(doff&15)<<4, flags)
	b = binary.BigEndian.AppendUint16(b, win)
	b = append(b, 0, 0, 0, 0) // checksum (not verified by default), urgent pointer
	return append(b, opts...)
}

// hSeg appends a plain segment over IPv4 or IPv6 (by the address family) whose IP header
// claims payload bytes of TCP payload; only the headers are captured (as with a snaplen).
func hSeg(b []byte, src, dst netip.AddrPort, seq, ack uint32, flags byte, win uint16, opts []byte, payload int) ([]byte, int) {
	tcpLen := 20 + len(opts)
	if src.Addr().Is4() {
		b = hEther(b, 0x0800)
		b = hIPv4(b, src.Addr(), dst.Addr(), 5, min(20+tcpLen+payload, 65535), 0, 6)
	} else {
		b = hEther(b, 0x86dd)
		b = hIPv6(b, src.Addr(), dst.Addr(), min(tcpLen+payload, 65535), 6)
	}
	b = hTCP(b, src.Port(), dst.Port(), seq, ack, flags, tcpLen/4, win, opts)
	return b, len(b) + payload
}

var hostileSeqs = []uint32{0, 1, 1 << 31, 1<<31 - 1, 1<<32 - 1, 1<<32 - 2}

// writeCraftedCapture writes every kind of malformed or extreme packet we could think of, on
// a few flows; if damaged, then a record whose length field is absurd. It returns how many
// packets it wrote.
func writeCraftedCapture(t *testing.T, path string, damaged bool) int {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hw := newHostileWriter(f, 1)
	rng := rand.New(rand.NewPCG(6, 6))
	a4 := netip.MustParseAddr("192.0.2.1")
	b4 := netip.MustParseAddr("198.51.100.1")
	a6 := netip.MustParseAddr("2001:db8::1")
	b6 := netip.MustParseAddr("2001:db8::2")
	flows := [][2]netip.AddrPort{
		{netip.AddrPortFrom(a4, 40000), netip.AddrPortFrom(b4, 80)},
		{netip.AddrPortFrom(b4, 80), netip.AddrPortFrom(a4, 40000)},
		{netip.AddrPortFrom(a6, 40001), netip.AddrPortFrom(b6, 443)},
		{netip.AddrPortFrom(a4, 0), netip.AddrPortFrom(a4, 0)}, // a self-connection on port 0
	}
	var b []byte
	emit := func(b []byte, orig int) {
		hw.record(b, orig)
		hw.advance(time.Duration(rng.IntN(2000)) * time.Microsecond)
	}

	// Every flag combination, with sequence and acknowledgment numbers at 0, 2^31 and the wrap,
	// zero-length, one-byte, full-size and maximal payloads.
	for fl := range 256 {
		for i, fw := range flows {
			seq := hostileSeqs[(fl+i)%len(hostileSeqs)]
			ack := hostileSeqs[(fl/3+i)%len(hostileSeqs)]
			payload := []int{0, 1, 1460, 65535}[(fl+i)%4]
			b, orig := hSeg(b[:0], fw[0], fw[1], seq, ack, byte(fl), uint16(fl*257), nil, payload)
			emit(b, orig)
		}
	}

	// Data offsets 0-15 against IP lengths that leave too little room, options beyond them.
	junk := make([]byte, 60)
	for i := range junk {
		junk[i] = byte(rng.Uint32())
	}
	for doff := range 16 {
		for _, tcpLen := range []int{0, 19, 20, 21, 40, 60, 61} {
			for _, captured := range []int{0, 20, 60} {
				b = hEther(b[:0], 0x0800)
				b = hIPv4(b, a4, b4, 5, 20+tcpLen, 0, 6)
				b = hTCP(b, 40002, 80, 1<<31, 1<<32-1, 0x12, doff, 100, junk[:captured])
				emit(b, 14+20+tcpLen)
			}
		}
	}

	// Options: cut short, zero and absurd lengths, running past the data offset and the packet.
	optSets := [][]byte{
		{2, 4, 5}, {2, 0}, {2, 1}, {2, 255, 1, 1}, {2, 40, 0, 0}, {3, 3, 255}, {3, 0}, {3, 3},
		{8, 10, 0, 0, 0, 1}, {8, 255}, {8, 2}, {4, 2}, {4, 0}, {5, 2}, {5, 3, 0}, {5, 34}, {5, 10, 0, 0, 0, 1, 0, 0, 0, 2},
		{34, 2}, {34, 0}, {254, 4, 0xF9, 0x89}, {254, 1}, {254, 2}, {0}, {1, 1, 1, 1, 1, 1, 1},
		{30, 255}, {99, 0, 99, 1}, {1, 1, 2},
	}
	for i := 0; i < 60; i++ {
		o := make([]byte, rng.IntN(41))
		for j := range o {
			o[j] = byte(rng.Uint32())
		}
		optSets = append(optSets, o)
	}
	for _, o := range optSets {
		for _, delta := range []int{-1, 0, 1, 10} {
			doff := min(max((20+len(o)+3)/4+delta, 0), 15)
			for _, fl := range []byte{0x02, 0x12, 0x10} {
				b = hEther(b[:0], 0x0800)
				b = hIPv4(b, a4, b4, 5, 20+doff*4, 0, 6)
				b = hTCP(b, 40003, 80, 7, 9, fl, doff, 1, o)
				emit(b, len(b))
			}
		}
	}

	// Zero-length and maximal segments: IP total length 65535 captured whole, claimed but cut,
	// an IPv6 jumbogram, IPv6 payload length 0 without the jumbo option.
	full := make([]byte, 0, 70000)
	full = hEther(full, 0x0800)
	full = hIPv4(full, a4, b4, 5, 65535, 0, 6)
	full = hTCP(full, 40004, 80, 1<<32-100, 0, 0x18, 5, 65535, nil)
	full = full[:14+65535]
	emit(full, len(full))
	emit(full[:60], len(full))
	b = hEther(b[:0], 0x0800)
	b = hIPv4(b, a4, b4, 5, 40, 0, 6)
	b = hTCP(b, 40004, 80, 1<<32-1, 0, 0x10, 5, 0, nil)
	emit(b, len(b))
	jumbo := hEther(nil, 0x86dd)
	jumbo = hIPv6(jumbo, a6, b6, 0, 0)
	jumbo = append(jumbo, 6, 0, 0xc2, 4, 0x40, 0, 0, 0) // hop-by-hop: jumbo payload 2^30
	jumbo = hTCP(jumbo, 40005, 443, 1<<31, 0, 0x18, 5, 1, nil)
	emit(jumbo, 14+40+1<<30)
	for _, plen := range []int{0, 1, 20, 65535} {
		b = hEther(b[:0], 0x86dd)
		b = hIPv6(b, a6, b6, plen, 6)
		b = hTCP(b, 40006, 443, 5, 5, 0x10, 5, 1, nil)
		emit(b, len(b))
	}

	// IPv4 headers: every IHL, lengths shorter than the header, fragments, truncation.
	for ihl := range 16 {
		for _, total := range []int{0, 19, 20, 40, 59, 60, 100, 65535} {
			b = hEther(b[:0], 0x0800)
			b = hIPv4(b, a4, b4, ihl, total, 0, 6)
			b = hTCP(b, 40007, 80, 1, 1, 0x10, 5, 1, nil)
			emit(b, len(b))
		}
	}
	for _, frag := range []uint16{0x2000, 0x2001, 0x0001, 0x1fff, 0x4000, 0xffff} {
		b, orig := hSeg(b[:0], flows[0][0], flows[0][1], 1, 1, 0x10, 1, nil, 100)
		binary.BigEndian.PutUint16(b[14+6:], frag)
		emit(b, orig)
	}
	whole, _ := hSeg(nil, flows[0][0], flows[0][1], 1, 1, 0x10, 1, []byte{2, 4, 5, 180}, 0)
	for n := 0; n < len(whole); n++ {
		emit(whole[:n], len(whole)) // every truncation, down to an empty frame
	}
	b = hEther(b[:0], 0x0800) // IPv6 behind the IPv4 EtherType, and the reverse
	b = hIPv6(b, a6, b6, 20, 6)
	emit(hTCP(b, 1, 2, 3, 4, 0x02, 5, 1, nil), 0)
	b = hEther(b[:0], 0x86dd)
	b = hIPv4(b, a4, b4, 5, 40, 0, 6)
	emit(hTCP(b, 1, 2, 3, 4, 0x02, 5, 1, nil), 0)

	// IPv6 extension header chains: long, cut, with lengths past the packet, fragments, AH.
	ext := func(chain []byte, lens []byte, tail []byte) {
		b = hEther(b[:0], 0x86dd)
		plen := len(tail)
		for i := range chain {
			plen += (int(lens[i]) + 1) * 8
		}
		b = hIPv6(b, a6, b6, plen, chain[0])
		for i := range chain {
			next := byte(6)
			if i+1 < len(chain) {
				next = chain[i+1]
			}
			n := (int(lens[i]) + 1) * 8
			if chain[i] == 44 {
				n = 8
			}
			h := make([]byte, n)
			h[0], h[1] = next, lens[i]
			if chain[i] == 51 {
				h[1] = byte(n/4 - 2)
			}
			b = append(b, h...)
		}
		b = append(b, tail...)
		emit(b, len(b))
		emit(b[:14+40+(len(b)-54)/2], len(b)) // cut inside the chain
	}
	tcp6 := hTCP(nil, 40008, 443, 1<<32-1, 1<<31, 0x18, 5, 1, nil)
	ext([]byte{0, 60, 43, 44, 51, 60}, []byte{0, 1, 2, 0, 2, 0}, tcp6)
	long := make([]byte, 200)
	for i := range long {
		long[i] = 60
	}
	ext(long, make([]byte, 200), tcp6)
	ext([]byte{0, 60}, []byte{0, 255}, tcp6)          // 2 KB of options
	ext([]byte{44}, []byte{0}, tcp6)                  // an atomic fragment
	ext([]byte{60, 59}, []byte{0, 0}, tcp6)           // no next header
	ext([]byte{0, 0, 0, 0}, []byte{0, 0, 0, 0}, tcp6) // hop-by-hop repeated
	ext([]byte{51}, []byte{255}, tcp6)
	b = hEther(b[:0], 0x86dd)
	b = hIPv6(b, a6, b6, 100, 44)
	b = append(b, 6, 0, 0, 9, 0, 0, 0, 1) // non-first fragment
	emit(append(b, tcp6...), 0)

	// Link-layer and tunnel nesting: a tall VLAN stack, IP-in-IP many deep.
	b = b[:0]
	b = append(b, 2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2)
	for range 40 {
		b = append(b, 0x81, 0x00, 0, 1)
	}
	b = append(b, 0x08, 0x00)
	b = hIPv4(b, a4, b4, 5, 40, 0, 6)
	emit(hTCP(b, 40009, 80, 1, 1, 0x02, 5, 1, nil), 0)
	b = hEther(b[:0], 0x0800)
	depth := 30
	for i := range depth {
		b = hIPv4(b, a4, b4, 5, 20*(depth-i)+40, 0, 4)
	}
	b = hIPv4(b, a4, b4, 5, 40, 0, 6)
	emit(hTCP(b, 40010, 80, 1, 1, 0x02, 5, 1, nil), 0)

	// Timestamps backwards and far forwards.
	hw.advance(-time.Hour)
	b, orig := hSeg(b[:0], flows[0][0], flows[0][1], 5, 5, 0x10, 1, nil, 1)
	emit(b, orig)
	hw.advance(100 * 24 * time.Hour)
	emit(b, orig)

	if damaged { // a record claiming 2 GB
		binary.LittleEndian.PutUint32(hw.hdr[8:], 0x7fffffff)
		binary.LittleEndian.PutUint32(hw.hdr[12:], 0x7fffffff)
		hw.w.Write(hw.hdr[:])
		hw.w.Write([]byte("tail"))
	}
	if err := hw.flush(); err != nil {
		t.Fatal(err)
	}
	return hw.n
}

// TestHostileCaptureThroughCLI runs the crafted capture through the whole command, in every
// output format and with the HTML report: no panic, the damage reported as a read error with
// its packet number, everything before it analysed.
func TestHostileCaptureThroughCLI(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hostile.pcap")
	n := writeCraftedCapture(t, path, true)

	src, err := capture.OpenFiles([]string{path}, capture.Config{VerifyChecksums: true})
	if err != nil {
		t.Fatal(err)
	}
	var seg capture.Segment
	for src.Next(&seg) {
	}
	st := src.Stats()
	errs := src.Errs()
	src.Close()
	t.Logf("%d packets written; read %+v", n, st)
	if st.Packets != uint64(n) || st.TCP == 0 || st.NonTCP == 0 || st.Truncated == 0 || st.Fragments == 0 {
		t.Errorf("stats %+v for %d crafted packets: expected TCP, non-TCP, truncated and fragments", st, n)
	}
	if len(errs) != 1 || errs[0].Packet != uint64(n+1) || errs[0].File != path {
		t.Fatalf("read errors %v, want one at packet %d", errs, n+1)
	}

	for _, format := range []string{"table", "json", "events", "zeek", "zeek-json"} {
		code, out, stderr := hostileRun("-r", path, "-o", format, "-v", "--html", filepath.Join(dir, format+".html"),
			"--fail-on", "any")
		if code != 2 || !strings.Contains(stderr, "reading stopped at packet") || len(out) == 0 {
			t.Errorf("-o %s: exit %d, %d bytes out, stderr %q: want exit 2 for the damaged end, after output", format, code, len(out), stderr)
		}
		if st, err := os.Stat(filepath.Join(dir, format+".html")); err != nil || st.Size() == 0 {
			t.Errorf("-o %s: no HTML report: %v", format, err)
		}
	}

	// Undamaged, with the same file read twice (merged), --expect-init then --expect: what
	// --expect-init writes about hostile traffic must hold for it.
	clean := filepath.Join(dir, "clean.pcap")
	writeCraftedCapture(t, clean, false)
	exp := filepath.Join(dir, "expect.yaml")
	if code, _, stderr := hostileRun("-r", clean, "-r", clean, "-o", "json", "--expect-init", exp); code != 0 {
		t.Fatalf("--expect-init: exit %d: %s", code, stderr)
	}
	if code, _, stderr := hostileRun("-r", clean, "-r", clean, "-o", "zeek", "--expect", exp); code != 0 {
		t.Errorf("--expect with the expectations --expect-init wrote: exit %d: %s", code, stderr)
	}
}

// hostileRun runs the command as main does and returns its exit code, stdout and stderr.
func hostileRun(args ...string) (int, string, string) {
	var out, errb strings.Builder
	err := run(args, strings.NewReader(""), &out, &errb)
	var ee *exitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.code, out.String(), errb.String() + ee.msg
	}
	return 2, out.String(), errb.String() + err.Error()
}

// heapInuse is the live heap after a full collection, with the memory the flow tables hold
// outside it (flowtable.MappedBytes).
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + uint64(flowtable.MappedBytes())
}

// pipeCapture runs gen in a goroutine writing a pcap into a pipe, and opens the pipe as the
// capture (through the standard-input path), so a million packets need no disk.
func pipeCapture(t *testing.T, gen func(hw *hostileWriter)) capture.Source {
	pr, pw := io.Pipe()
	go func() {
		hw := newHostileWriter(pw, 1)
		gen(hw)
		pw.CloseWithError(hw.flush())
	}()
	src, err := capture.OpenFiles([]string{"-"}, capture.Config{Stdin: pr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(); pr.Close() })
	return src
}

// perConnBound is the most live heap one tracked connection may hold after a SYN flood,
// everything included (Conn, flow table entry, Zeek view). Measured at about 2.9 KB on
// 2026-11-24 (go1.26, amd64), before the work on per-connection memory: a generous bound that
// holds today; lower it as that work lands.
const perConnBound = 4 << 10

// TestHostileFloodMemory: a SYN flood of 200,000 distinct 4-tuples and a RST/ACK storm over
// them keep memory bounded per connection; the outputs are written without trouble.
func TestHostileFloodMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the flood is 400,000 packets")
	}
	const flood = 200_000
	client := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000))
	}
	server := netip.MustParseAddrPort("203.0.113.1:443")
	src := pipeCapture(t, func(hw *hostileWriter) {
		var b []byte
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range flood {
			var orig int
			b, orig = hSeg(b[:0], client(i), server, rng.Uint32(), 0, 0x02, 64240,
				[]byte{2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}, 0)
			hw.record(b, orig)
			hw.advance(5 * time.Microsecond)
		}
		// RST/ACK storm: forged resets at random sequence numbers towards the flood's clients.
		for range flood {
			var orig int
			b, orig = hSeg(b[:0], server, client(rng.IntN(flood)), rng.Uint32(), rng.Uint32(), 0x14, 0, nil, 0)
			hw.record(b, orig)
			hw.advance(5 * time.Microsecond)
		}
	})
	base := heapInuse()
	tr := flowtable.New(flowtable.Config{})
	var seg capture.Segment
	for src.Next(&seg) {
		tr.Add(&seg)
	}
	tr.Finish(time.Time{})
	after := heapInuse()
	conns := tr.Conns()
	if len(conns) != flood || len(src.Errs()) != 0 {
		t.Fatalf("%d connections (want %d), errors %v", len(conns), flood, src.Errs())
	}
	per := float64(after-base) / float64(len(conns))
	t.Logf("SYN flood + RST storm: %d connections, heap %d -> %d bytes: %.0f bytes per connection (bound %d)",
		len(conns), base, after, per, perConnBound)
	if per > perConnBound {
		t.Errorf("%.0f bytes of heap per connection, more than %d", per, perConnBound)
	}
	o := &report.Options{Now: tr.Now}
	for name, write := range map[string]func(io.Writer) error{
		"json":      func(w io.Writer) error { return report.WriteJSON(w, conns, o) },
		"zeek":      func(w io.Writer) error { return report.WriteZeek(w, conns) },
		"zeek-json": func(w io.Writer) error { return report.WriteZeekJSON(w, conns) },
	} {
		if err := write(io.Discard); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	runtime.KeepAlive(tr)
}

// hostileFlows are the few 4-tuples the long hostile stream runs on.
func hostileFlows() [][2]netip.AddrPort {
	var out [][2]netip.AddrPort
	for i := range 8 {
		out = append(out, [2]netip.AddrPort{
			netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), uint16(50000+i)),
			netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(80+i*1000)),
		})
	}
	for i := range 2 {
		out = append(out, [2]netip.AddrPort{
			netip.AddrPortFrom(netip.MustParseAddr("2001:db8::a"), uint16(60000+i)),
			netip.AddrPortFrom(netip.MustParseAddr("2001:db8::b"), 443),
		})
	}
	return out
}

// fewFlowsSource is a capture of a handshake on each of hostileFlows, then n hostile packets
// on them: random flags (with SYN only if syns; SYNs keep the flow's ISN), sequence and
// acknowledgment numbers at the special values, random, or near the flow, payloads from none
// to maximal, random windows, odd options, timestamps advancing by up to step, sometimes
// going back, and twenty silences of ten minutes.
func fewFlowsSource(t *testing.T, n int, syns bool, step time.Duration) capture.Source {
	flows := hostileFlows()
	return pipeCapture(t, func(hw *hostileWriter) {
		var b []byte
		rng := rand.New(rand.NewPCG(3, 4))
		isn := make([][2]uint32, len(flows))
		for i, fw := range flows {
			isn[i] = [2]uint32{rng.Uint32(), rng.Uint32()}
			for _, p := range []struct {
				from     int
				flags    byte
				seq, ack uint32
			}{{0, 0x02, isn[i][0], 0}, {1, 0x12, isn[i][1], isn[i][0] + 1}, {0, 0x10, isn[i][0] + 1, isn[i][1] + 1}} {
				var orig int
				b, orig = hSeg(b[:0], fw[p.from], fw[1-p.from], p.seq, p.ack, p.flags, 1000, nil, 0)
				hw.record(b, orig)
				hw.advance(time.Millisecond)
			}
		}
		opts := [][]byte{nil, {3, 3, 255, 1}, {8, 10, 0, 0, 0, 9, 0, 0, 0, 1, 1, 1}, {2, 4, 0, 0}, {5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1}}
		for k := range n {
			i := rng.IntN(len(flows))
			from := rng.IntN(2)
			flags := byte(rng.Uint32())
			if !syns {
				flags &^= 0x02
			}
			var seq, ack uint32
			switch rng.IntN(4) {
			case 0:
				seq, ack = hostileSeqs[rng.IntN(len(hostileSeqs))], hostileSeqs[rng.IntN(len(hostileSeqs))]
			case 1:
				seq, ack = rng.Uint32(), rng.Uint32()
			default: // near where the flow is, so data, holes and retransmissions happen
				seq, ack = isn[i][from]+rng.Uint32N(1<<20), isn[i][1-from]+rng.Uint32N(1<<20)
			}
			if flags&0x02 != 0 && flags&0x04 == 0 {
				// A SYN with a new ISN is a new connection on the 4-tuple (port reuse, or a
				// SYN-ACK re-anchoring the sequence space so that the next SYN is one): the
				// connection list rightly grows with those. Here SYNs repeat the flow's ISN.
				seq = isn[i][from]
			}
			payload := []int{0, 0, 1, rng.IntN(1461), 65495}[rng.IntN(5)]
			var orig int
			b, orig = hSeg(b[:0], flows[i][from], flows[i][1-from], seq, ack, flags,
				uint16(rng.IntN(3)*rng.IntN(65536)), opts[rng.IntN(len(opts))], payload)
			hw.record(b, orig)
			switch {
			case k%(n/20) == n/40:
				// Twenty times, a silence long enough for every timer to expire. (Zeek ends a
				// connection after a quiet spell, and the next packet starts a new conn.log
				// row: rows grow with the capture's duration, not its packets.)
				hw.advance(10 * time.Minute)
			case rng.IntN(1000) == 0:
				hw.advance(-time.Second)
			default:
				hw.advance(time.Duration(rng.Int64N(int64(step))))
			}
		}
	})
}

// TestHostileFewFlowsMemory: a million hostile packets (every flag combination without SYN)
// on ten 4-tuples, through the tracker with the HTML collector and the events writer attached
// (the most per-connection memory the tool keeps), must not grow memory: per-connection state
// is bounded.
func TestHostileFewFlowsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a million packets")
	}
	const total = 1_000_000
	flows := hostileFlows()
	// Without SYNs, and at a flood's pace (about 70,000 packets a second): after a FIN or RST,
	// every SYN starts a new Zeek connection (a conn.log row, kept until output), and so does
	// the next packet 5 s after a close; see TestHostileZeekRows.
	src := fewFlowsSource(t, total, false, 30*time.Microsecond)
	html := report.NewHTMLCollector()
	o := &report.Options{}
	cfg := flowtable.Config{OnEvent: func(e tracker.Event) { report.WriteEvent(io.Discard, &e, o) }}
	html.Attach(&cfg)
	var kinds [8]int
	prev := cfg.OnSegment
	cfg.OnSegment = func(c *tracker.Conn, s *capture.Segment, k reassembly.Kind) { kinds[k&7]++; prev(c, s, k) }
	base := heapInuse()
	tr := flowtable.New(cfg)
	var seg capture.Segment
	var heapAt [2]uint64
	n := 0
	for src.Next(&seg) {
		tr.Add(&seg)
		n++
		switch n {
		case total / 10:
			heapAt[0] = heapInuse()
		case total:
			heapAt[1] = heapInuse()
		}
	}
	tr.Finish(time.Time{})
	conns := tr.Conns()
	end := heapInuse()
	if len(src.Errs()) != 0 {
		t.Fatal(src.Errs())
	}
	rows := 0
	for _, c := range conns {
		rows += len(c.Zeek.Rows())
	}
	t.Logf("%d packets on %d 4-tuples: %d connections, %d Zeek rows; kinds %v; heap above baseline: %d KB after %d packets, %d KB after %d, %d KB after Finish",
		n, len(flows), len(conns), rows, kinds, (heapAt[0]-base)>>10, total/10, (heapAt[1]-base)>>10, total, (end-base)>>10)
	if len(conns) != len(flows) {
		t.Errorf("%d connections on %d 4-tuples", len(conns), len(flows))
	}
	// The HTML collector keeps up to 4,000 packets of 32 bytes per connection by design; the
	// rest must not depend on how many packets went by.
	const bound = 8 << 20
	if grew := int64(heapAt[1]) - int64(heapAt[0]); grew > 2<<20 {
		t.Errorf("heap grew by %d KB between packet %d and packet %d on the same %d connections", grew>>10, total/10, total, len(conns))
	}
	if end-base > bound {
		t.Errorf("%d KB of heap for %d connections, more than %d KB", (end-base)>>10, len(conns), bound>>10)
	}
	ropts := &report.Options{Now: tr.Now}
	for name, write := range map[string]func(io.Writer) error{
		"table":     func(w io.Writer) error { return report.WriteTable(w, conns, ropts) },
		"json":      func(w io.Writer) error { return report.WriteJSON(w, conns, ropts) },
		"zeek":      func(w io.Writer) error { return report.WriteZeek(w, conns) },
		"zeek-json": func(w io.Writer) error { return report.WriteZeekJSON(w, conns) },
		"html":      func(w io.Writer) error { return report.WriteHTML(w, conns, html, report.HTMLInfo{}, ropts) },
	} {
		cw := &hostileCounter{}
		if err := write(cw); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		t.Logf("%s output: %d bytes", name, cw.n)
	}
	runtime.KeepAlive(tr)
}

type hostileCounter struct{ n int64 }

func (w *hostileCounter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// TestHostileZeekRows feeds a few 4-tuples hostile traffic that makes Zeek (and so the
// tracker's Zeek view) start a new conn.log row every few packets: a SYN after every FIN or
// RST, or the first packet more than 5 s after a close. Rows are capped per connection
// (zeek.MaxRows, the rest counted in RowsDropped), so memory stays bounded however
// long the attack goes on.
func TestHostileZeekRows(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 400,000 packets")
	}
	const total = 200_000
	for _, c := range []struct {
		name string
		syns bool
		step time.Duration
	}{{"SYNs after a close", true, 30 * time.Microsecond}, {"no SYN, slow (20 ms steps)", false, 20 * time.Millisecond}} {
		src := fewFlowsSource(t, total, c.syns, c.step)
		base := heapInuse()
		tr := flowtable.New(flowtable.Config{})
		var seg capture.Segment
		for src.Next(&seg) {
			tr.Add(&seg)
		}
		tr.Finish(time.Time{})
		heap := heapInuse() - base
		rows, dropped := 0, uint64(0)
		for _, conn := range tr.Conns() {
			kept := conn.Zeek.Rows()
			rows += len(kept)
			dropped += conn.Zeek.RowsDropped
			if len(kept) > zeek.MaxRows {
				t.Errorf("%s: connection %d keeps %d Zeek rows, more than the cap of %d", c.name, conn.ID, len(kept), zeek.MaxRows)
			}
			// Row numbers: the first, then a jump over the dropped ones, then consecutive.
			for i, r := range kept {
				want := uint64(i) + 1
				if i > 0 {
					want += conn.Zeek.RowsDropped
				}
				if r.N != want {
					t.Errorf("%s: connection %d row %d is numbered %d, want %d", c.name, conn.ID, i, r.N, want)
					break
				}
			}
		}
		t.Logf("%s: %d hostile packets on %d 4-tuples: %d connections, %d Zeek rows kept, %d dropped, %d KB of heap",
			c.name, total, len(hostileFlows()), len(tr.Conns()), rows, dropped, heap>>10)
		if len(tr.Conns()) != len(hostileFlows()) {
			t.Errorf("%s: %d connections on %d 4-tuples", c.name, len(tr.Conns()), len(hostileFlows()))
		}
		if dropped == 0 {
			t.Errorf("%s: no Zeek row was dropped: the traffic no longer exercises the cap", c.name)
		}
		// Each kept row is about 500 bytes plus its history; allow 4 KB per row and 64 KB
		// per connection for everything else.
		if limit := uint64(rows)*4096 + uint64(len(tr.Conns()))*65536; heap > limit {
			t.Errorf("%s: %d KB of heap for %d kept rows, want under %d KB", c.name, heap>>10, rows, limit>>10)
		}
		runtime.KeepAlive(tr)
	}
}
