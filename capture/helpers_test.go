package capture

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sharedPcaps is the public capture corpus beside the repository (../shared/pcaps from the repo
// root). Tests that need it skip, saying why, when it is not there.
func sharedPcaps(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "shared", "pcaps")
	if _, err := os.Stat(filepath.Join(dir, "public", "MANIFEST.tsv")); err != nil {
		t.Skipf("public capture corpus not found at %s (expected ../shared/pcaps beside the repository): %v", dir, err)
	}
	return dir
}

// corpusFile is the path of a file of the shared corpus ("public/x.pcap", "zeek/y.pcap").
func corpusFile(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(sharedPcaps(t), name)
}

// result is everything a Source produced.
type result struct {
	segs  []Segment
	stats Stats
	errs  []*ReadError
}

// readAll opens paths and reads them to the end.
func readAll(t testing.TB, paths []string, cfg Config) result {
	t.Helper()
	src, err := OpenFiles(paths, cfg)
	if err != nil {
		t.Fatalf("OpenFiles(%v): %v", paths, err)
	}
	defer src.Close()
	var r result
	var seg Segment
	for src.Next(&seg) {
		r.segs = append(r.segs, seg)
	}
	r.stats = src.Stats()
	r.errs = src.Errs()
	return r
}

// recordOffsets walks a pcap or pcapng file independently of the code under test and returns
// the offset of every packet record, stopping at the first one that is damaged.
func recordOffsets(t testing.TB, data []byte) []int64 {
	t.Helper()
	var offs []int64
	if len(data) < 4 {
		return nil
	}
	if string(data[:4]) == magicPcapng {
		var order binary.ByteOrder = binary.LittleEndian
		off := 0
		for off+12 <= len(data) {
			if binary.LittleEndian.Uint32(data[off:]) == ngSHB {
				if binary.BigEndian.Uint32(data[off+8:]) == ngByteOrderMagic {
					order = binary.BigEndian
				} else {
					order = binary.LittleEndian
				}
			}
			typ := order.Uint32(data[off:])
			l := int(order.Uint32(data[off+4:]))
			if l < 12 || off+l > len(data) {
				break
			}
			if typ == ngEPB || typ == ngSPB || typ == ngPB {
				offs = append(offs, int64(off))
			}
			off += l
		}
		return offs
	}
	var order binary.ByteOrder = binary.LittleEndian
	if data[0] == 0xa1 {
		order = binary.BigEndian
	}
	off := 24
	for off+16 <= len(data) {
		caplen := int(order.Uint32(data[off+8:]))
		if caplen > maxRecordLen || off+16+caplen > len(data) {
			break
		}
		offs = append(offs, int64(off))
		off += 16 + caplen
	}
	return offs
}

// pcapRecord is a record of a little-endian microsecond pcap file being built or rewritten.
type pcapRecord struct {
	ts      time.Time
	data    []byte
	wireLen int
}

// parsePcap reads a little- or big-endian pcap file (microsecond or nanosecond) into records.
func parsePcap(t testing.TB, data []byte) (link uint32, recs []pcapRecord) {
	t.Helper()
	var order binary.ByteOrder = binary.LittleEndian
	if data[0] == 0xa1 {
		order = binary.BigEndian
	}
	nano := order.Uint32(data) == 0xa1b23c4d
	link = order.Uint32(data[20:])
	for off := 24; off+16 <= len(data); {
		caplen := int(order.Uint32(data[off+8:]))
		if off+16+caplen > len(data) {
			break
		}
		frac := int64(order.Uint32(data[off+4:]))
		if !nano {
			frac *= 1000
		}
		recs = append(recs, pcapRecord{
			ts:      time.Unix(int64(order.Uint32(data[off:])), frac).UTC(),
			data:    append([]byte(nil), data[off+16:off+16+caplen]...),
			wireLen: int(order.Uint32(data[off+12:])),
		})
		off += 16 + caplen
	}
	return link, recs
}

// buildPcap writes records as a pcap file of the given link type, in the given byte order, with
// nanosecond timestamps if nano.
func buildPcap(link uint32, recs []pcapRecord, order binary.ByteOrder, nano bool) []byte {
	var b bytes.Buffer
	hdr := make([]byte, 24)
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	order.PutUint32(hdr, magic)
	order.PutUint16(hdr[4:], 2)
	order.PutUint16(hdr[6:], 4)
	order.PutUint32(hdr[16:], 262144)
	order.PutUint32(hdr[20:], link)
	b.Write(hdr)
	for _, r := range recs {
		rh := make([]byte, 16)
		order.PutUint32(rh, uint32(r.ts.Unix()))
		frac := uint32(r.ts.Nanosecond())
		if !nano {
			frac /= 1000
		}
		order.PutUint32(rh[4:], frac)
		order.PutUint32(rh[8:], uint32(len(r.data)))
		wl := r.wireLen
		if wl < len(r.data) {
			wl = len(r.data)
		}
		order.PutUint32(rh[12:], uint32(wl))
		b.Write(rh)
		b.Write(r.data)
	}
	return b.Bytes()
}

// ngBuilder writes pcapng files block by block, in either byte order.
type ngBuilder struct {
	buf   bytes.Buffer
	order binary.ByteOrder
}

func (w *ngBuilder) block(typ uint32, body []byte) int64 {
	off := int64(w.buf.Len())
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	h := make([]byte, 8)
	w.order.PutUint32(h, typ)
	w.order.PutUint32(h[4:], uint32(12+len(body)))
	w.buf.Write(h)
	w.buf.Write(body)
	tr := make([]byte, 4)
	w.order.PutUint32(tr, uint32(12+len(body)))
	w.buf.Write(tr)
	return off
}

// option encodes one pcapng option (code, length, padded value).
func (w *ngBuilder) option(code uint16, val []byte) []byte {
	o := make([]byte, 4, 4+len(val)+3)
	w.order.PutUint16(o, code)
	w.order.PutUint16(o[2:], uint16(len(val)))
	o = append(o, val...)
	for len(o)%4 != 0 {
		o = append(o, 0)
	}
	return o
}

func (w *ngBuilder) shb(major, minor uint16) int64 {
	body := make([]byte, 16)
	w.order.PutUint32(body, ngByteOrderMagic)
	w.order.PutUint16(body[4:], major)
	w.order.PutUint16(body[6:], minor)
	binary.LittleEndian.PutUint64(body[8:], ^uint64(0)) // section length unknown
	return w.block(ngSHB, body)
}

// idb adds an interface; tsresol and tsoffset are written when non-zero.
func (w *ngBuilder) idb(link uint16, tsresol byte, tsoffset int64) int64 {
	body := make([]byte, 8)
	w.order.PutUint16(body, link)
	w.order.PutUint32(body[4:], 262144)
	if tsresol != 0 {
		body = append(body, w.option(9, []byte{tsresol})...)
	}
	if tsoffset != 0 {
		v := make([]byte, 8)
		w.order.PutUint64(v, uint64(tsoffset))
		body = append(body, w.option(14, v)...)
	}
	if tsresol != 0 || tsoffset != 0 {
		body = append(body, 0, 0, 0, 0) // end of options
	}
	return w.block(ngIDB, body)
}

// epb adds an enhanced packet block with a raw timestamp in the interface's units.
func (w *ngBuilder) epb(iface uint32, ts uint64, data []byte, wireLen int) int64 {
	body := make([]byte, 20, 20+len(data)+3)
	w.order.PutUint32(body, iface)
	w.order.PutUint32(body[4:], uint32(ts>>32))
	w.order.PutUint32(body[8:], uint32(ts))
	w.order.PutUint32(body[12:], uint32(len(data)))
	if wireLen < len(data) {
		wireLen = len(data)
	}
	w.order.PutUint32(body[16:], uint32(wireLen))
	body = append(body, data...)
	return w.block(ngEPB, body)
}

func (w *ngBuilder) spb(data []byte) int64 {
	body := make([]byte, 4, 4+len(data)+3)
	w.order.PutUint32(body, uint32(len(data)))
	body = append(body, data...)
	return w.block(ngSPB, body)
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// nativeOrder is this machine's byte order, as files written here have it.
func nativeOrder() binary.ByteOrder {
	if nativeBigEndian() {
		return binary.BigEndian
	}
	return binary.LittleEndian
}
