package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"
)

// The classic pcap reader replaced pcapgo.Reader. refInput is the old way, kept verbatim
// (openInput's pcap path, input.read, pcapError and pcapOpenError as they were): the tests
// below read the same bytes both ways and want the same packets, timestamps, lengths,
// offsets, progress and error texts.
type refInput struct {
	raw, cr *countingReader
	br      *bufio.Reader
	gzip    bool
	pcap    *pcapgo.Reader
	link    uint16
	records uint64
	recOff  int64
}

var errRefNotPcap = errors.New("not a classic pcap file")

func refOpen(r io.Reader) (*refInput, error) {
	path := "-"
	in := &refInput{}
	in.raw = &countingReader{r: r}
	in.cr, in.br = in.raw, bufio.NewReaderSize(in.raw, readBufferSize)
	magic, err := in.br.Peek(4)
	if err != nil && len(magic) == 0 {
		return nil, errRefNotPcap
	}
	if isGzip(magic) {
		gz, err := gzip.NewReader(in.br)
		if err != nil {
			return nil, errRefNotPcap
		}
		in.gzip = true
		in.cr = &countingReader{r: gz}
		in.br = bufio.NewReaderSize(in.cr, readBufferSize)
		magic, err = in.br.Peek(4)
		if err != nil && len(magic) < 4 {
			return nil, errRefNotPcap
		}
	}
	if len(magic) < 4 {
		return nil, errRefNotPcap
	}
	switch string(magic) {
	case magicPcapMicroLE, magicPcapMicroBE, magicPcapNanoLE, magicPcapNanoBE:
		pr, err := pcapgo.NewReader(in.br)
		if err != nil {
			return nil, in.openError(err)
		}
		in.pcap = pr
		in.link = uint16(pr.LinkType())
		pr.SetSnaplen(min(pr.Snaplen(), maxRecordLen))
		if !linkSupported(in.link) {
			return nil, fmt.Errorf("%s: link type %d (%s) is not supported; tcpstate reads Ethernet, Linux cooked (SLL, SLL2), raw IP and BSD loopback captures: capture on an Ethernet or \"any\" interface (tcpdump -i any)", displayName(path), in.link, linkName(in.link))
		}
		return in, nil
	}
	return nil, errRefNotPcap
}

func (in *refInput) consumed() int64 { return in.cr.n - int64(in.br.Buffered()) }

func (in *refInput) progress() int64 {
	if in.gzip {
		return in.raw.n
	}
	return in.consumed()
}

func (in *refInput) openError(err error) error {
	name := displayName("-")
	if in.cr.err != nil {
		return fmt.Errorf("%s: cannot read the pcap file header: %v", name, in.cr.err)
	}
	if n := in.consumed(); n < 24 {
		return fmt.Errorf("%s: the file ends %d bytes into the 24-byte pcap file header; the capture is incomplete (was tcpdump stopped before it wrote anything?)", name, n)
	}
	msg := err.Error()
	if strings.Contains(msg, "version") {
		return fmt.Errorf("%s: unsupported pcap file version (%s; only 2.4 is read); re-save the file with Wireshark or: editcap -F pcap %s out.pcap", name, strings.ToLower(msg[:1])+msg[1:], "-")
	}
	return fmt.Errorf("%s: bad pcap file header: %v", name, err)
}

func (in *refInput) read() ([]byte, gopacket.CaptureInfo, uint16, error) {
	start := in.consumed()
	in.recOff = start
	data, ci, err := in.pcap.ZeroCopyReadPacketData()
	if err != nil {
		return nil, ci, 0, in.pcapError(err, ci, start)
	}
	return data, ci, in.link, nil
}

func (in *refInput) pcapError(err error, ci gopacket.CaptureInfo, start int64) error {
	got := in.consumed() - start
	if in.cr.err != nil && in.gzip {
		return fmt.Errorf("the gzip compressed data is damaged or cut short (%v); decompress what is readable with: zcat %s > out.pcap", in.cr.err, "-")
	}
	if in.cr.err != nil {
		return fmt.Errorf("read error: %w", in.cr.err)
	}
	switch {
	case got == 0 && err == io.EOF:
		return io.EOF
	case got < 16:
		return fmt.Errorf("the file ends %d bytes into a 16-byte record header (truncated dump file: the capture was cut short, e.g. tcpdump killed or a copy interrupted): %w", got, io.ErrUnexpectedEOF)
	case ci.CaptureLength > maxRecordLen || ci.CaptureLength < 0:
		return fmt.Errorf("the record header claims a %d-byte packet, bigger than the maximum of %d: the file is corrupt from here on", uint32(ci.CaptureLength), maxRecordLen)
	case ci.CaptureLength > ci.Length:
		return fmt.Errorf("the record header claims %d captured bytes of a %d-byte packet (more than it had): the file is corrupt from here on", ci.CaptureLength, ci.Length)
	case got < 16+int64(ci.CaptureLength):
		return fmt.Errorf("the file ends %d bytes into a packet of %d captured bytes (truncated dump file: the capture was cut short): %w", got-16, ci.CaptureLength, io.ErrUnexpectedEOF)
	}
	return err
}

// diffPcap reads data both ways, each through a reader from wrap, and reports the first
// difference. It returns how many records were compared.
func diffPcap(t testing.TB, data []byte, wrap func([]byte) io.Reader) int {
	t.Helper()
	old, oerr := refOpen(wrap(data))
	if errors.Is(oerr, errRefNotPcap) {
		return 0
	}
	in, nerr := openInput(0, "-", wrap(data))
	if (oerr == nil) != (nerr == nil) || oerr != nil && oerr.Error() != nerr.Error() {
		t.Fatalf("open: error %v, was %v", nerr, oerr)
	}
	if oerr != nil {
		return 0
	}
	defer in.close()
	if in.link != old.link {
		t.Fatalf("link type %d, was %d", in.link, old.link)
	}
	for n := 1; ; n++ {
		odata, oci, olink, oerr := old.read()
		ndata, nlink, nerr := in.read()
		if (oerr == nil) != (nerr == nil) || oerr != nil && oerr.Error() != nerr.Error() {
			t.Fatalf("record %d: error %v, was %v", n, nerr, oerr)
		}
		if in.recOff != old.recOff || in.consumed() != old.consumed() || in.progress() != old.progress() {
			t.Fatalf("record %d: offset %d consumed %d progress %d, was %d %d %d", n, in.recOff, in.consumed(), in.progress(), old.recOff, old.consumed(), old.progress())
		}
		if oerr != nil {
			return n - 1
		}
		nts, ots := in.timestamp(), oci.Timestamp
		if !bytes.Equal(ndata, odata) || nlink != olink || in.wireLen != oci.Length || nts != ots {
			t.Fatalf("record %d: %d bytes, link %d, wire %d, time %v; was %d, %d, %d, %v", n, len(ndata), nlink, in.wireLen, nts, len(odata), olink, oci.Length, ots)
		}
		if len(ndata) > 0 && cap(ndata) != len(ndata) {
			t.Fatalf("record %d: cap %d > len %d: appending would overwrite the next record", n, cap(ndata), len(ndata))
		}
	}
}

// readerModes are the ways a stream arrives: whole, a byte at a time, in odd pieces, with
// EOF alongside the last data, failing midway, or gzip-compressed (and then damaged).
var readerModes = []struct {
	name string
	wrap func([]byte) io.Reader
}{
	{"whole", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"onebyte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"half", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	{"dataerr", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	{"pieces", func(b []byte) io.Reader { return &piecesReader{data: b, rnd: rand.New(rand.NewSource(int64(len(b))))} }},
	{"fail-late", func(b []byte) io.Reader { return &failingReader{data: b[:len(b)*7/8], err: io.ErrClosedPipe} }},
	{"fail-early", func(b []byte) io.Reader { return &failingReader{data: b[:len(b)/3], err: io.ErrClosedPipe} }},
	{"fail-with-data", func(b []byte) io.Reader {
		return &failingReader{data: b[:len(b)*7/8], err: io.ErrClosedPipe, withData: true}
	}},
	{"gzip", func(b []byte) io.Reader { return bytes.NewReader(gz(b)) }},
	{"gzip-cut", func(b []byte) io.Reader { g := gz(b); return bytes.NewReader(g[:len(g)*2/3]) }},
	{"gzip-damaged", func(b []byte) io.Reader {
		g := gz(b)
		g[len(g)/2] ^= 0x55
		return bytes.NewReader(g)
	}},
	{"gzip-bad-crc", func(b []byte) io.Reader {
		g := gz(b)
		g[len(g)-6] ^= 1
		return bytes.NewReader(g)
	}},
}

// gz compresses b, remembering the last result: each mode wraps the same bytes twice.
func gz(b []byte) []byte {
	if len(b) == len(gzLast.in) && (len(b) == 0 || &b[0] == &gzLast.in[0]) {
		return append([]byte(nil), gzLast.out...)
	}
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	w.Write(b)
	w.Close()
	gzLast.in, gzLast.out = b, buf.Bytes()
	return append([]byte(nil), gzLast.out...)
}

var gzLast struct{ in, out []byte }

// piecesReader returns pieces of random length, sometimes none.
type piecesReader struct {
	data []byte
	rnd  *rand.Rand
}

func (p *piecesReader) Read(b []byte) (int, error) {
	if len(p.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), len(p.data), p.rnd.Intn(100_000))
	copy(b, p.data[:n])
	p.data = p.data[n:]
	return n, nil
}

// pcapVariants builds pcap files that exercise the reader: both byte orders and timestamp
// resolutions, records from empty to the largest allowed, more than the buffer holds, and
// damage of each kind.
func pcapVariants(t testing.TB) map[string][]byte {
	rnd := rand.New(rand.NewSource(1))
	frame := tcpFrame(t)
	var recs []pcapRecord
	size := 0
	for i := 0; size < 3<<20; i++ {
		var d []byte
		switch i % 7 {
		case 0:
			d = frame
		case 1:
			d = nil
		case 2:
			d = make([]byte, maxRecordLen)
		case 3:
			d = make([]byte, maxRecordLen-rnd.Intn(50))
		default:
			d = make([]byte, rnd.Intn(70_000))
		}
		rnd.Read(d[min(len(d), 54):])
		if len(d) >= len(frame) {
			copy(d, frame)
		}
		recs = append(recs, pcapRecord{ts: time.Unix(1_600_000_000+int64(i), int64(rnd.Intn(1e9))), data: d, wireLen: len(d) + rnd.Intn(3)})
		size += 16 + len(d)
	}
	v := map[string][]byte{}
	// Damage in the big file, near where the reader modes fail or cut it: whether a read
	// error is met before the damage depends on how far ahead the stream was read.
	big := buildPcap(linkEthernet, recs, binary.LittleEndian, false)
	var offs []int
	for off := 24; off < len(big); off += 16 + int(binary.LittleEndian.Uint32(big[off+8:])) {
		offs = append(offs, off)
	}
	for _, frac := range []float64{0.2, 0.3, 0.33, 0.4, 0.45, 0.5, 0.55, 0.6, 0.64, 0.66, 0.7, 0.8, 0.84, 0.86, 0.87, 0.9} {
		at := int(frac * float64(len(big)))
		i := 0
		for i+1 < len(offs) && offs[i+1] <= at {
			i++
		}
		d := append([]byte(nil), big...)
		binary.LittleEndian.PutUint32(d[offs[i]+8:], 0xffffffff)
		v[fmt.Sprintf("big-damaged-at-%v", frac)] = d
	}
	small := []pcapRecord{{ts: time.Unix(1, 999_999_999), data: frame}, {ts: time.Unix(2, 5), data: frame[:20], wireLen: 9000}, {ts: time.Unix(3, 0), data: frame}}
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, nano := range []bool{false, true} {
			name := fmt.Sprintf("%v-nano=%v", order, nano)
			v[name+"-big"] = buildPcap(linkEthernet, recs, order, nano)
			s := buildPcap(linkEthernet, small, order, nano)
			v[name+"-small"] = s
			offs := []int{24, 24 + 16 + len(frame), 24 + 32 + len(frame) + 20}
			for i := range len(s) {
				v[fmt.Sprintf("%s-cut%d", name, i)] = s[:i]
			}
			patch := func(what string, off int, val uint32) {
				d := append([]byte(nil), s...)
				order.PutUint32(d[off:], val)
				v[name+"-"+what] = d
			}
			patch("frac-wraps", offs[0]+4, 0xffffffff)
			patch("frac-over", offs[1]+4, 1_500_000_000)
			patch("sec-max", offs[1], 0xffffffff)
			patch("caplen-max", offs[1]+8, maxRecordLen)
			patch("caplen-max-wire", offs[1]+12, maxRecordLen+1)
			patch("caplen-over", offs[1]+8, maxRecordLen+1)
			patch("caplen-huge", offs[2]+8, 0xffffffff)
			patch("caplen-wire", offs[2]+8, 21)
			patch("wire-zero", offs[2]+12, 0)
			patch("snaplen-tiny", 16, 10)
			patch("snaplen-huge", 16, 0xffffffff)
			patch("link-fcs", 20, 0x14000001) // Ethernet with an FCS length in the top bits
			patch("link-high", 20, 0x00010001)
			patch("link-wifi", 20, 105)
			d := append([]byte(nil), s...)
			order.PutUint16(d[4:], 3)
			v[name+"-major"] = d
			d = append([]byte(nil), s...)
			order.PutUint16(d[6:], 5)
			v[name+"-minor"] = d
		}
	}
	return v
}

func TestPcapReaderMatchesPcapgo(t *testing.T) {
	files := pcapVariants(t)
	if dir, err := sharedDir(); err == nil {
		for _, sub := range []string{"public", "zeek"} {
			entries, _ := os.ReadDir(filepath.Join(dir, sub))
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".pcap") || strings.HasSuffix(e.Name(), ".cap") || strings.HasSuffix(e.Name(), ".pcap.gz") {
					files[sub+"/"+e.Name()] = readFile(t, filepath.Join(dir, sub, e.Name()))
				}
			}
		}
	}
	for name, data := range files {
		for _, m := range readerModes {
			if len(data) > 1<<20 && m.name == "onebyte" || strings.HasPrefix(name, "big-damaged") && (m.name == "gzip" || m.name == "gzip-bad-crc") {
				continue // slow, and the other modes cover it
			}
			t.Run(name+"/"+m.name, func(t *testing.T) { diffPcap(t, data, m.wrap) })
		}
	}
}

// sharedDir is the shared corpus, if it is there.
func sharedDir() (string, error) {
	dir := filepath.Join("..", "..", "shared", "pcaps")
	_, err := os.Stat(filepath.Join(dir, "public", "MANIFEST.tsv"))
	return dir, err
}

// FuzzPcapReader reads arbitrary bytes behind a valid pcap file header both ways (see
// refInput), through each reader mode.
func FuzzPcapReader(f *testing.F) {
	s := buildPcap(linkEthernet, []pcapRecord{{ts: time.Unix(1, 2000), data: tcpFrame(f)}, {ts: time.Unix(3, 4000), data: tcpFrame(f)[:30], wireLen: 80}}, binary.LittleEndian, false)
	f.Add(s[24:], uint8(0), uint8(0))
	f.Add(s[24:40], uint8(1), uint8(3))
	f.Add(s[24:], uint8(2), uint8(7))
	f.Fuzz(func(t *testing.T, records []byte, header, mode uint8) {
		order := []binary.ByteOrder{binary.LittleEndian, binary.BigEndian}[header&1]
		h := buildPcap(linkEthernet, nil, order, header&2 != 0)
		if header&4 != 0 {
			order.PutUint32(h[16:], 100)
		}
		m := readerModes[int(mode)%len(readerModes)]
		diffPcap(t, append(h, records...), m.wrap)
	})
}

// BenchmarkPcapRecords reads pcap records from memory (input.read and the timestamp, no
// decoding): the reader's own cost, and its allocations, which must be none. One op is one
// packet.
func BenchmarkPcapRecords(b *testing.B) {
	frame := tcpFrame(b)
	var recs []pcapRecord
	for i := range 20_000 {
		recs = append(recs, pcapRecord{ts: time.Unix(int64(i), 1000), data: frame[:40+i%(len(frame)-40)]})
	}
	data := buildPcap(linkEthernet, recs, binary.LittleEndian, false)
	b.Run("pcapReader", func(b *testing.B) {
		in, err := openInput(0, "-", &cycleReader{data: data})
		if err != nil {
			b.Fatal(err)
		}
		for range len(recs) { // the first pass allocates the buffers
			in.read()
		}
		b.SetBytes(int64(len(data)-24) / int64(len(recs)))
		b.ReportAllocs()
		sink := 0
		for b.Loop() {
			d, _, err := in.read()
			if err != nil {
				b.Fatal(err)
			}
			sink += len(d) + in.timestamp().Nanosecond()
		}
		_ = sink
	})
	b.Run("pcapgo", func(b *testing.B) { // as it was, for comparison
		in, err := refOpen(&cycleReader{data: data})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)-24) / int64(len(recs)))
		b.ReportAllocs()
		sink := 0
		for b.Loop() {
			d, ci, _, err := in.read()
			if err != nil {
				b.Fatal(err)
			}
			sink += len(d) + ci.Timestamp.Nanosecond()
		}
		_ = sink
	})
}

// cycleReader is an endless pcap file: its records over and over.
type cycleReader struct {
	data []byte
	off  int
}

func (c *cycleReader) Read(p []byte) (int, error) {
	if c.off == len(c.data) {
		c.off = 24
	}
	n := copy(p, c.data[c.off:])
	c.off += n
	return n, nil
}
