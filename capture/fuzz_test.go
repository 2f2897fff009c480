package capture

import (
	"bytes"
	"runtime"
	"testing"
)

// supportedLinks are the link types the decoder handles; FuzzDecode runs each input through
// all of them.
var supportedLinks = []uint16{linkNull, linkEthernet, linkRaw12, linkRaw14, linkRaw, linkLoop, linkSLL, linkIPv4, linkIPv6, linkSLL2}

// FuzzDecode feeds arbitrary bytes to the link/IP/TCP decoder as every link type: it must not
// panic, allocate, or produce a segment whose lengths contradict each other.
func FuzzDecode(f *testing.F) {
	f.Add(tcpFrame(f), uint16(0), true)
	f.Add(ether(etherIPv6, ipv6Packet(protoHopByHop, []byte{protoTCP, 0, 1, 4, 0, 0, 0, 0}, ipv6TCP(f))), uint16(0), true)
	f.Add(ipv4Packet(f), uint16(0), false)
	f.Add(ipv4Packet(f)[:45], uint16(100), false)
	d := decoder{}
	f.Fuzz(func(t *testing.T, frame []byte, extra uint16, verify bool) {
		d.verifyChecksums = verify
		var s Segment
		for _, link := range supportedLinks {
			v := d.decode(link, frame, len(frame)+int(extra), &s)
			if v != isTCP {
				continue
			}
			if s.IPLen < s.PayloadLen+20 {
				t.Fatalf("link %d: IPLen %d < payload %d + 20", link, s.IPLen, s.PayloadLen)
			}
			if !s.Src.IsValid() || !s.Dst.IsValid() {
				t.Fatalf("link %d: invalid addresses %v %v", link, s.Src, s.Dst)
			}
		}
	})
}

// FuzzReadFile reads arbitrary bytes as a capture file (through the stdin path, so gzip and
// format detection are exercised too): no panic, no runaway memory, offsets inside the input.
func FuzzReadFile(f *testing.F) {
	// More seeds are in testdata/fuzz/FuzzReadFile (see testdata/fuzz/README.md).
	f.Add(buildPcap(1, []pcapRecord{{data: tcpFrame(f)}}, nativeOrder(), false))
	w := &ngBuilder{order: nativeOrder()}
	w.shb(1, 0)
	w.idb(linkEthernet, 9, 0)
	w.epb(0, 1, tcpFrame(f), 0)
	w.spb(tcpFrame(f))
	f.Add(w.buf.Bytes())
	f.Add(gzipBytes(f, w.buf.Bytes()))
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		src, err := OpenFiles([]string{"-"}, Config{Stdin: bytes.NewReader(data)})
		if err != nil {
			return
		}
		defer src.Close()
		gz := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
		var s Segment
		last := uint64(0)
		for src.Next(&s) {
			if s.Packet <= last {
				t.Fatalf("packet %d after %d", s.Packet, last)
			}
			last = s.Packet
			if !gz && (s.Offset < 0 || s.Offset >= int64(len(data))) {
				t.Fatalf("offset %d outside a %d-byte input", s.Offset, len(data))
			}
		}
		for _, e := range src.Errs() {
			if !gz && (e.Offset < 0 || e.Offset > int64(len(data))) {
				t.Fatalf("error offset %d outside a %d-byte input: %v", e.Offset, len(data), e)
			}
			_ = e.Error()
		}
		if st := src.Stats(); !gz && st.Bytes > int64(len(data)) {
			t.Fatalf("Stats.Bytes %d > input %d", st.Bytes, len(data))
		}
		runtime.ReadMemStats(&after)
		// Buffers are fixed (64 KiB read buffer, at most one 256 KiB record, gzip's window);
		// anything beyond means a length from the file was trusted.
		if grew := after.TotalAlloc - before.TotalAlloc; !gz && grew > 4<<20+64*uint64(len(data)) {
			t.Fatalf("reading %d bytes allocated %d bytes", len(data), grew)
		}
	})
}
