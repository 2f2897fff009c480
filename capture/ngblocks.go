package capture

import (
	"encoding/binary"
	"fmt"
)

// pcapgo's NgReader reads through a bufio.Reader and does not say where a block began, yet a
// Segment carries its record's offset and a damaged file must be reported at the block where
// reading stopped. ngBlocks recovers both: it sits under pcapgo's buffer, sees every byte of
// the stream in order as it is read (ahead of pcapgo's parsing, by at most a buffer), and
// follows the block framing (type, total length) on its own. NgReader returns every packet
// block (EPB, SPB, obsolete PB) in file order, so the n-th packet it returns lives in the n-th
// packet block seen here; and when NgReader fails, the block it was in is the last one that
// started before the position it had consumed.

// pcapng block types.
const (
	ngSHB uint32 = 0x0a0d0d0a // section header: the same in both byte orders
	ngIDB uint32 = 1
	ngPB  uint32 = 2 // obsolete packet block
	ngSPB uint32 = 3
	ngISB uint32 = 5
	ngEPB uint32 = 6

	ngByteOrderMagic = 0x1a2b3c4d
)

// ngMark is a block seen in the stream.
type ngMark struct {
	off          int64
	typ          uint32
	major, minor uint16 // SHB version
	iface        uint32 // EPB, PB: interface
	ts           uint64 // EPB, PB: timestamp in the interface's units
	bad          string // why the framing can not be followed past this block ("" if it can)
}

func (m ngMark) isPacket() bool { return m.typ == ngEPB || m.typ == ngSPB || m.typ == ngPB }

// ngBlocks follows pcapng block framing in a byte stream fed to it in order.
type ngBlocks struct {
	next  int64    // stream offset where the next block starts
	hdr   [24]byte // the start of the block at next, as far as collected
	have  int      // bytes of hdr collected
	big   bool     // byte order of the current section
	lost  bool     // framing can no longer be followed (the block at the last mark is bad)
	marks []ngMark // blocks seen and not yet matched to a returned packet, from head on
	head  int
	plain int // length of the run of plain blocks (not packet, not section header) just seen
}

// maxPlainRun bounds the marks kept for a run of blocks that are neither packets nor section
// headers (interface, statistics, name resolution, custom blocks...), so that a file of millions
// of them between two packets cannot make the tracker hold millions of marks. Only the newest
// matter: pcapgo is never further behind the tracker than its read buffer, which holds fewer
// blocks than this (64 KiB / 12-byte minimum block).
const maxPlainRun = 8192

// want is how many header bytes are needed before the block at next can be judged: type and
// length, plus the byte-order magic and version for a section header, plus the captured length
// for packet blocks.
func (t *ngBlocks) want() int {
	if t.have < 8 {
		return 8
	}
	switch t.rawType() {
	case ngSHB:
		return 16
	case ngEPB, ngPB:
		return 24
	}
	return 8
}

func (t *ngBlocks) rawType() uint32 { return t.u32(t.hdr[0:]) }

func (t *ngBlocks) u32(b []byte) uint32 {
	if t.big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (t *ngBlocks) u16(b []byte) uint16 {
	if t.big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

// feed takes the next bytes of the stream; base is the stream offset of p[0].
func (t *ngBlocks) feed(p []byte, base int64) {
	for len(p) > 0 && !t.lost {
		if base < t.next {
			skip := t.next - base
			if skip >= int64(len(p)) {
				return
			}
			p = p[skip:]
			base += skip
			continue
		}
		want := t.want()
		k := copy(t.hdr[t.have:want], p)
		t.have += k
		p = p[k:]
		base += int64(k)
		if t.have < want || t.want() > t.have {
			continue
		}
		t.finish()
	}
}

// minBlockLen is the smallest total length a block of each type can have.
func minBlockLen(typ uint32) uint32 {
	switch typ {
	case ngSHB:
		return 28
	case ngIDB:
		return 20
	case ngEPB, ngPB:
		return 32
	case ngSPB:
		return 16
	case ngISB:
		return 24
	}
	return 12
}

// finish judges the block whose header was collected and moves on to the next one.
func (t *ngBlocks) finish() {
	m := ngMark{off: t.next}
	if binary.LittleEndian.Uint32(t.hdr[0:]) == ngSHB {
		switch {
		case binary.BigEndian.Uint32(t.hdr[8:]) == ngByteOrderMagic:
			t.big = true
		case binary.LittleEndian.Uint32(t.hdr[8:]) == ngByteOrderMagic:
			t.big = false
		default:
			m.typ = ngSHB
			m.bad = fmt.Sprintf("section header block has a bad byte-order magic (% x)", t.hdr[8:12])
		}
		m.major, m.minor = t.u16(t.hdr[12:]), t.u16(t.hdr[14:])
	}
	if m.bad == "" {
		m.typ = t.rawType()
		switch m.typ {
		case ngEPB:
			m.iface = t.u32(t.hdr[8:])
		case ngPB:
			m.iface = uint32(t.u16(t.hdr[8:]))
		}
		if m.typ == ngEPB || m.typ == ngPB {
			m.ts = uint64(t.u32(t.hdr[12:]))<<32 | uint64(t.u32(t.hdr[16:]))
		}
		length := t.u32(t.hdr[4:])
		switch {
		case length < minBlockLen(m.typ):
			m.bad = fmt.Sprintf("%s claims a total length of %d bytes, less than the %d it needs", ngBlockName(m.typ), length, minBlockLen(m.typ))
		case (m.typ == ngEPB || m.typ == ngPB) && t.u32(t.hdr[20:]) > length-32:
			m.bad = fmt.Sprintf("%s claims %d captured bytes but is only %d bytes long", ngBlockName(m.typ), t.u32(t.hdr[20:]), length)
		default:
			t.next += int64(length)
		}
	}
	t.marks = append(t.marks, m)
	t.have = 0
	if m.isPacket() || m.typ == ngSHB || m.bad != "" {
		t.plain = 0
	} else if t.plain++; t.plain >= 2*maxPlainRun && len(t.marks)-t.head >= 2*maxPlainRun {
		// The last 2*maxPlainRun marks are all plain: keep the newer half.
		end := len(t.marks)
		copy(t.marks[end-2*maxPlainRun:], t.marks[end-maxPlainRun:])
		t.marks = t.marks[:end-maxPlainRun]
		t.plain = maxPlainRun
	}
	if m.bad != "" {
		t.lost = true
	}
}

// packetAt returns the packet block pcapgo just returned: the oldest packet block not yet
// matched. ok is false if the framing was lost (pcapgo read on anyway). newSection reports that
// a section header went by since the previous packet: interface numbers start again.
func (t *ngBlocks) packetAt() (m ngMark, ok, newSection bool) {
	for t.head < len(t.marks) {
		mk := t.marks[t.head]
		t.head++
		if mk.typ == ngSHB {
			newSection = true
		}
		if mk.isPacket() {
			m, ok = mk, true
			break
		}
	}
	// Drop what was matched; marks only pile up between two packets (interface blocks, ...).
	if t.head == len(t.marks) {
		t.marks = t.marks[:0]
		t.head = 0
	} else if t.head >= 256 {
		n := copy(t.marks, t.marks[t.head:])
		t.marks = t.marks[:n]
		t.head = 0
	}
	return m, ok, newSection
}

// failedAt returns the block pcapgo was reading when it failed, having consumed the stream up to
// consumed: the last block that started before that point.
func (t *ngBlocks) failedAt(consumed int64) (ngMark, bool) {
	if !t.lost && t.have > 0 && t.next < consumed {
		// A block whose header did not even arrive whole.
		m := ngMark{off: t.next, typ: 0xffffffff}
		if t.have >= 12 && binary.LittleEndian.Uint32(t.hdr[0:]) == ngSHB &&
			binary.BigEndian.Uint32(t.hdr[8:]) != ngByteOrderMagic && binary.LittleEndian.Uint32(t.hdr[8:]) != ngByteOrderMagic {
			m.typ = ngSHB
			m.bad = fmt.Sprintf("section header block has a bad byte-order magic (% x)", t.hdr[8:12])
		}
		return m, true
	}
	for i := len(t.marks) - 1; i >= t.head; i-- {
		if t.marks[i].off < consumed {
			return t.marks[i], true
		}
	}
	return ngMark{}, false
}

func ngBlockName(typ uint32) string {
	switch typ {
	case ngSHB:
		return "section header block"
	case ngIDB:
		return "interface description block"
	case ngEPB:
		return "enhanced packet block"
	case ngSPB:
		return "simple packet block"
	case ngPB:
		return "packet block"
	case ngISB:
		return "interface statistics block"
	case 4:
		return "name resolution block"
	case 0x0a:
		return "decryption secrets block"
	}
	return fmt.Sprintf("block of type 0x%x", typ)
}
