package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	pcapHeader := buildPcap(1, nil, binary.LittleEndian, false)
	files := map[string][]byte{
		"empty.pcap":    {},
		"capture.txt":   []byte("HTTP/1.1 200 OK\r\n\r\n"),
		"short.pcap":    pcapHeader[:10],
		"tiny.pcap":     {0xd4, 0xc3},
		"wifi.pcap":     buildPcap(105, nil, binary.LittleEndian, false),
		"version.pcap":  append(append([]byte{}, pcapHeader[:4]...), append([]byte{3, 0, 4, 0}, pcapHeader[8:]...)...),
		"text.pcap.gz":  gzipBytes(t, []byte("hello, world")),
		"broken.gz":     {0x1f, 0x8b, 0x08, 0x00, 0x01},
		"kuznetzov.cap": {0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0},
		"x.bz2":         []byte("BZh91AY&SY"),
		"ng.pcapng":     {0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef},
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		path string
		says []string
	}{
		{filepath.Join(dir, "missing.pcap"), []string{"missing.pcap: no such file", "check the path"}},
		{dir, []string{"is a directory"}},
		{filepath.Join(dir, "empty.pcap"), []string{"empty.pcap: the file is empty"}},
		{filepath.Join(dir, "capture.txt"), []string{"capture.txt: not a pcap or pcapng file (starts with bytes 48 54 54 50", "tcpdump -w, Wireshark or tshark", "editcap"}},
		{filepath.Join(dir, "short.pcap"), []string{"short.pcap: the file ends 10 bytes into the 24-byte pcap file header"}},
		{filepath.Join(dir, "tiny.pcap"), []string{"tiny.pcap: only 2 bytes long"}},
		{filepath.Join(dir, "wifi.pcap"), []string{"wifi.pcap: link type 105 (IEEE802_11) is not supported"}},
		{filepath.Join(dir, "version.pcap"), []string{"version.pcap: unsupported pcap file version"}},
		{filepath.Join(dir, "text.pcap.gz"), []string{"text.pcap.gz: gzip-compressed data that is not a pcap or pcapng file"}},
		{filepath.Join(dir, "broken.gz"), []string{"broken.gz: ", "gzip"}},
		{filepath.Join(dir, "kuznetzov.cap"), []string{"modified (Kuznetzov) pcap", "editcap -F pcap"}},
		{filepath.Join(dir, "x.bz2"), []string{"bzip2-compressed", "bunzip2"}},
		{filepath.Join(dir, "ng.pcapng"), []string{"ng.pcapng: not a readable pcapng file", "byte-order magic"}},
	}
	for _, c := range cases {
		_, err := OpenFiles([]string{c.path}, Config{})
		if err == nil {
			t.Errorf("%s: opened without error", c.path)
			continue
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not say %q", filepath.Base(c.path), err, s)
			}
		}
	}
	if _, err := OpenFiles(nil, Config{}); err == nil {
		t.Errorf("no paths: no error")
	}
	// One bad file among good ones fails the whole open: the user named it.
	good := writeTemp(t, "good.pcap", pcapHeader)
	if _, err := OpenFiles([]string{good, filepath.Join(dir, "capture.txt")}, Config{}); err == nil || !strings.Contains(err.Error(), "capture.txt") {
		t.Errorf("good + bad file: error %v, want one naming capture.txt", err)
	}
}

func TestOpenPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: file permissions do not stop reads")
	}
	p := writeTemp(t, "secret.pcap", buildPcap(1, nil, binary.LittleEndian, false))
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	_, err := OpenFiles([]string{p}, Config{})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("error %v, want permission denied", err)
	}
}

// TestGzip reads gzip-compressed copies of corpus files (pcap, pcapng, damaged) and wants the
// same segments, offsets into the inflated stream, and errors as from the plain files.
func TestGzip(t *testing.T) {
	for _, name := range []string{
		"public/gopacket_test_ethernet.pcap",
		"public/zeek_ldap_gap-data-missing.pcapng",
		"public/sv_smtp-to-comma_corrupt.pcap",
		"public/gopacket_test901_badversion.pcapng",
	} {
		t.Run(name, func(t *testing.T) {
			plain := corpusFile(t, name)
			gz := writeTemp(t, filepath.Base(name)+".gz", gzipBytes(t, readFile(t, plain)))
			want := readAll(t, []string{plain}, Config{})
			got := readAll(t, []string{gz}, Config{})
			if !reflect.DeepEqual(got.segs, want.segs) {
				t.Errorf("segments differ from the plain file's")
			}
			if len(got.errs) != len(want.errs) {
				t.Fatalf("errors %v, want %v", got.errs, want.errs)
			}
			for i := range got.errs {
				g, w := got.errs[i], want.errs[i]
				if g.Packet != w.Packet || g.Offset != w.Offset {
					t.Errorf("error at packet %d offset %d, want %d %d", g.Packet, g.Offset, w.Packet, w.Offset)
				}
			}
			if st, _ := os.Stat(gz); len(got.errs) == 0 && got.stats.Bytes != st.Size() {
				t.Errorf("Stats.Bytes = %d, want the compressed size %d", got.stats.Bytes, st.Size())
			}
		})
	}
	// A compressed file cut short is damage, reported as such.
	data := gzipBytes(t, readFile(t, corpusFile(t, "public/zeek_tcp_reassembly.pcap")))
	cut := writeTemp(t, "cut.pcap.gz", data[:len(data)/2])
	r := readAll(t, []string{cut}, Config{})
	if len(r.errs) != 1 || len(r.segs) == 0 || !strings.Contains(r.errs[0].Error(), "gzip") {
		t.Errorf("cut gzip: %d segments, errors %v; want some segments and a gzip error", len(r.segs), r.errs)
	}
}

func TestStdin(t *testing.T) {
	name := corpusFile(t, "public/gopacket_test300.pcapng")
	data := readFile(t, name)
	want := readAll(t, []string{name}, Config{})
	got := readAll(t, []string{"-"}, Config{Stdin: bytes.NewReader(data)})
	if !reflect.DeepEqual(got.segs, want.segs) {
		t.Errorf("stdin segments differ from the file's")
	}
	// Gzip through stdin, as in zcat-less pipelines.
	got = readAll(t, []string{"-"}, Config{Stdin: bytes.NewReader(gzipBytes(t, data))})
	if !reflect.DeepEqual(got.segs, want.segs) {
		t.Errorf("gzip stdin segments differ from the file's")
	}
	_, err := OpenFiles([]string{"-", "-"}, Config{Stdin: bytes.NewReader(data)})
	if err == nil || !strings.Contains(err.Error(), "standard input is given twice") {
		t.Errorf("stdin twice: %v", err)
	}
	// Damage on stdin is named "-".
	cut := readFile(t, corpusFile(t, "public/sv_http-mime-truncated_cutshort.pcap"))
	r := readAll(t, []string{"-"}, Config{Stdin: bytes.NewReader(cut)})
	if len(r.errs) != 1 || r.errs[0].File != "-" || r.errs[0].Packet != 2697 {
		t.Errorf("stdin damage: %v", r.errs)
	}
	_, err = OpenFiles([]string{"-"}, Config{Stdin: strings.NewReader("")})
	if err == nil || !strings.Contains(err.Error(), "- (standard input): the file is empty") {
		t.Errorf("empty stdin: %v", err)
	}
}

// TestMerge merges files in timestamp order, stable on ties, each file keeping its order.
func TestMerge(t *testing.T) {
	a := corpusFile(t, "public/zeek_tcp_reassembly.pcap")
	b := corpusFile(t, "public/zeek_http_get-gzip.pcap")
	ra := readAll(t, []string{a}, Config{})
	rb := readAll(t, []string{b}, Config{})

	// Shift b's timestamps into the middle of a's, so the two interleave.
	link, recs := parsePcap(t, readFile(t, b))
	shift := ra.segs[len(ra.segs)/2].Time.Sub(rb.segs[0].Time)
	for i := range recs {
		recs[i].ts = recs[i].ts.Add(shift)
	}
	shifted := writeTemp(t, "shifted.pcap", buildPcap(link, recs, binary.LittleEndian, false))

	r := readAll(t, []string{a, shifted}, Config{})
	if len(r.segs) != len(ra.segs)+len(rb.segs) {
		t.Fatalf("%d segments, want %d", len(r.segs), len(ra.segs)+len(rb.segs))
	}
	interleaved := false
	var next [2]int
	for i, s := range r.segs {
		if i > 0 {
			p := r.segs[i-1]
			if s.Time.Before(p.Time) {
				t.Fatalf("segment %d at %v before the previous at %v", i, s.Time, p.Time)
			}
			if p.File != s.File && i > 1 && r.segs[i-2].File != p.File {
				interleaved = true
			}
		}
		want := ra.segs
		if s.File == 1 {
			want = rb.segs
		}
		w := want[next[s.File]]
		next[s.File]++
		if s.Packet != w.Packet || s.Seq != w.Seq || s.Offset != w.Offset {
			t.Fatalf("file %d out of order: got packet %d, want %d", s.File, s.Packet, w.Packet)
		}
	}
	if !interleaved {
		t.Errorf("the files did not interleave; the test is not testing the merge")
	}

	// The same file twice: every timestamp ties, and the first file goes first each time.
	r = readAll(t, []string{b, b}, Config{})
	for i := 0; i < len(r.segs); i += 2 {
		if r.segs[i].File != 0 || r.segs[i+1].File != 1 || r.segs[i].Packet != r.segs[i+1].Packet {
			t.Fatalf("tie at %d not broken by file order: files %d, %d", i, r.segs[i].File, r.segs[i+1].File)
		}
	}

	// A damaged file among others stops alone.
	bad := corpusFile(t, "public/sv_smtp-to-comma_corrupt.pcap")
	r = readAll(t, []string{a, bad, b}, Config{})
	if want := len(ra.segs) + 18 + len(rb.segs); len(r.segs) != want {
		t.Errorf("%d segments, want %d", len(r.segs), want)
	}
	if len(r.errs) != 1 || r.errs[0].File != bad {
		t.Errorf("errors %v, want one for %s", r.errs, bad)
	}
}

// TestDamage cuts and corrupts files and checks where reading stops.
func TestDamage(t *testing.T) {
	name := corpusFile(t, "public/gopacket_test_ethernet.pcap")
	data := readFile(t, name)
	offs := recordOffsets(t, data)
	if len(offs) != 10 {
		t.Fatalf("%d records", len(offs))
	}
	cases := []struct {
		name   string
		data   []byte
		segs   int
		packet uint64
		offset int64
		says   string
	}{
		{"clean end at a record boundary", data[:offs[5]], 5, 0, 0, ""},
		{"cut in a record header", data[:offs[5]+7], 5, 6, offs[5], "ends 7 bytes into a 16-byte record header"},
		{"cut in packet data", data[:offs[5]+30], 5, 6, offs[5], "ends 14 bytes into a packet of"},
		{"caplen larger than the wire length", patch32(data, offs[3]+8, 70000), 3, 4, offs[3], "70000 captured bytes of a"},
		{"absurd caplen", patch32(data, offs[3]+8, 0xfffffff0), 3, 4, offs[3], "bigger than the maximum of 262144"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := readAll(t, []string{writeTemp(t, "x.pcap", c.data)}, Config{})
			if len(r.segs) != c.segs {
				t.Errorf("%d segments, want %d", len(r.segs), c.segs)
			}
			if c.packet == 0 {
				if len(r.errs) != 0 {
					t.Errorf("errors %v, want none", r.errs)
				}
				return
			}
			if len(r.errs) != 1 {
				t.Fatalf("errors %v, want one", r.errs)
			}
			e := r.errs[0]
			if e.Packet != c.packet || e.Offset != c.offset || !strings.Contains(e.Error(), c.says) {
				t.Errorf("got packet %d offset %d %q; want packet %d offset %d saying %q", e.Packet, e.Offset, e.Error(), c.packet, c.offset, c.says)
			}
		})
	}
}

func patch32(data []byte, off int64, v uint32) []byte {
	d := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(d[off:], v)
	return d
}

// TestPcapng builds pcapng files by hand: both byte orders, several sections and interfaces,
// timestamp resolutions and offsets, simple packet blocks, and damage at known blocks.
func TestPcapng(t *testing.T) {
	frame := readAll(t, []string{corpusFile(t, "public/gopacket_test_ethernet.pcap")}, Config{})
	_ = frame
	_, recs := parsePcap(t, readFile(t, corpusFile(t, "public/gopacket_test_ethernet.pcap")))
	syn := recs[0].data // Ethernet, 10.1.1.2:44644 > 10.1.1.1:80 SYN
	var raw []byte      // the same packet as raw IP
	raw = syn[14:]

	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		t.Run(order.String(), func(t *testing.T) {
			w := &ngBuilder{order: order}
			w.shb(1, 0)
			w.idb(linkEthernet, 0, 0)          // if 0: microseconds (default)
			w.idb(linkRaw, 9, 0)               // if 1: nanoseconds
			w.idb(linkEthernet, 0x80|20, 1000) // if 2: 2^-20 s, offset 1000 s
			var offs []int64
			offs = append(offs, w.epb(0, 1_500_000_000_123_456, syn, 0))
			offs = append(offs, w.epb(1, 1_500_000_000_123_456_789, raw, 0))
			offs = append(offs, w.epb(2, 1_500_000_000<<20|1<<19, syn, 0))
			// A second section, of the other byte order, with its own interfaces.
			other := binary.ByteOrder(binary.BigEndian)
			if order == binary.BigEndian {
				other = binary.LittleEndian
			}
			w.order = other
			w.shb(1, 0)
			w.idb(linkSLL2, 3, 0) // milliseconds
			sll2 := make([]byte, 20)
			binary.BigEndian.PutUint16(sll2, etherIPv4)
			offs = append(offs, w.epb(0, 1_500_000_001_500, append(sll2, raw...), 0))
			offs = append(offs, w.spb(append(sll2, raw...)))

			r := readAll(t, []string{writeTemp(t, "x.pcapng", w.buf.Bytes())}, Config{})
			if len(r.errs) != 0 || len(r.segs) != 5 {
				t.Fatalf("%d segments, errors %v", len(r.segs), r.errs)
			}
			wantTimes := []time.Time{
				time.Unix(1_500_000_000, 123_456_000),
				time.Unix(1_500_000_000, 123_456_789),
				time.Unix(1_500_001_000, 500_000_000),
				time.Unix(1_500_000_001, 500_000_000),
				{}, // a simple packet block has no timestamp
			}
			// The merge is per file, so records come in file order.
			for i, s := range r.segs {
				if s.Packet != uint64(i+1) || s.Offset != offs[i] {
					t.Errorf("segment %d: packet %d offset %d, want %d %d", i, s.Packet, s.Offset, i+1, offs[i])
				}
				if !s.Time.Equal(wantTimes[i]) {
					t.Errorf("segment %d: time %v, want %v", i, s.Time, wantTimes[i])
				}
				if s.Seq != 2471086128 || s.Flags != SYN {
					t.Errorf("segment %d: seq %d flags %v", i, s.Seq, s.Flags)
				}
			}
		})
	}

	// Damage: where it stops, and what it says.
	build := func(f func(w *ngBuilder) (stop int64)) ([]byte, int64) {
		w := &ngBuilder{order: binary.LittleEndian}
		w.shb(1, 0)
		w.idb(linkEthernet, 0, 0)
		w.epb(0, 1, syn, 0)
		stop := f(w)
		return w.buf.Bytes(), stop
	}
	cases := []struct {
		name string
		make func(w *ngBuilder) int64
		cut  int // bytes to cut off the end
		says string
	}{
		{"cut inside an EPB", func(w *ngBuilder) int64 { return w.epb(0, 2, syn, 0) }, 10, "ends inside a enhanced packet block"},
		{"cut inside a block header", func(w *ngBuilder) int64 {
			off := int64(w.buf.Len())
			w.buf.Write([]byte{6, 0, 0})
			return off
		}, 0, "ends inside a block"},
		{"EPB claiming more than it holds", func(w *ngBuilder) int64 {
			off := w.epb(0, 2, syn, 0)
			binary.LittleEndian.PutUint32(w.buf.Bytes()[off+20:], 5000)
			w.epb(0, 3, syn, 0)
			return off
		}, 0, "claims 5000 captured bytes"},
		{"block length too small", func(w *ngBuilder) int64 {
			off := w.epb(0, 2, syn, 0)
			binary.LittleEndian.PutUint32(w.buf.Bytes()[off+4:], 8)
			return off
		}, 0, "total length of 8 bytes"},
		{"interface that does not exist", func(w *ngBuilder) int64 { return w.epb(7, 2, syn, 0) }, 0, "Interface id 7"},
		{"unsupported section version", func(w *ngBuilder) int64 {
			off := w.shb(2, 0)
			w.idb(linkEthernet, 0, 0)
			w.epb(0, 2, syn, 0)
			return off
		}, 0, "pcapng version 2.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, stop := build(c.make)
			data = data[:len(data)-c.cut]
			r := readAll(t, []string{writeTemp(t, "x.pcapng", data)}, Config{})
			if len(r.segs) != 1 || len(r.errs) != 1 {
				t.Fatalf("%d segments, errors %v; want 1 and one error", len(r.segs), r.errs)
			}
			e := r.errs[0]
			if e.Packet != 2 || e.Offset != stop || !strings.Contains(e.Error(), c.says) {
				t.Errorf("got packet %d offset %d %q; want packet 2 offset %d saying %q", e.Packet, e.Offset, e.Error(), stop, c.says)
			}
		})
	}
}

func TestCloseStopsReading(t *testing.T) {
	src, err := OpenFiles([]string{corpusFile(t, "public/zeek_tcp_reassembly.pcap")}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	var seg Segment
	if !src.Next(&seg) {
		t.Fatal("no first segment")
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if src.Next(&seg) {
		t.Errorf("Next after Close returned a segment")
	}
	if err := src.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// A reader that fails mid-stream (an I/O error, not EOF) stops the input with a ReadError.
// failingReader returns its data, then fails: after it, or with its last piece when withData
// (as gzip does).
type failingReader struct {
	data     []byte
	err      error
	withData bool
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	if f.withData && len(f.data) == 0 {
		return n, f.err
	}
	return n, nil
}

func TestIOError(t *testing.T) {
	data := readFile(t, corpusFile(t, "public/gopacket_test_ethernet.pcap"))
	offs := recordOffsets(t, data)
	in := &failingReader{data: data[:offs[4]+20], err: io.ErrClosedPipe}
	r := readAll(t, []string{"-"}, Config{Stdin: in})
	if len(r.segs) != 4 || len(r.errs) != 1 || !strings.Contains(r.errs[0].Error(), io.ErrClosedPipe.Error()) {
		t.Errorf("%d segments, errors %v", len(r.segs), r.errs)
	}
}

// TestPcapngManyBlocks: a long run of blocks that are not packets neither breaks offsets nor
// piles up marks in the block tracker.
func TestPcapngManyBlocks(t *testing.T) {
	_, recs := parsePcap(t, readFile(t, corpusFile(t, "public/gopacket_test_ethernet.pcap")))
	w := &ngBuilder{order: binary.LittleEndian}
	w.shb(1, 0)
	w.idb(linkEthernet, 0, 0)
	w.epb(0, 1, recs[0].data, 0)
	for i := 0; i < 100_000; i++ {
		w.block(0x0bad, nil) // a 12-byte custom block
	}
	want := w.epb(0, 2, recs[1].data, 0)
	data := w.buf.Bytes()

	var tr ngBlocks
	for off := 0; off < len(data); off += 1000 {
		tr.feed(data[off:min(off+1000, len(data))], int64(off))
	}
	if len(tr.marks) > 4*maxPlainRun {
		t.Errorf("%d marks held for 100,000 blocks", len(tr.marks))
	}

	r := readAll(t, []string{writeTemp(t, "many.pcapng", data)}, Config{})
	if len(r.segs) != 2 || len(r.errs) != 0 || r.segs[1].Offset != want {
		t.Fatalf("%d segments, errors %v, second at %d want %d", len(r.segs), r.errs, r.segs[1].Offset, want)
	}
	// Damage after the run is still placed exactly.
	cut := writeTemp(t, "cut.pcapng", data[:len(data)-5])
	r = readAll(t, []string{cut}, Config{})
	if len(r.errs) != 1 || r.errs[0].Offset != want || r.errs[0].Packet != 2 {
		t.Fatalf("errors %v, want one at packet 2 offset %d", r.errs, want)
	}
}
