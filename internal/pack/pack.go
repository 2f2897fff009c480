// Package pack writes and reads a sequence of fields compactly: it is how the tracker keeps a
// quiet connection in a few hundred bytes instead of a few kilobytes (flowtable/dormant.go, tracker/pack.go).
//
// One function per struct visits every field in order with a Codec that either encodes or
// decodes, so the two directions cannot drift apart. Fields come in groups of 32 behind a mask
// of four bytes (little-endian, a bit per field) saying which of them are not zero; only those
// are written, as varints. A connection is mostly zeros (a SYN that was never answered sets a
// few dozen of its ~200 fields), so this costs about a bit per zero field and a varint per set
// one. Block puts a group of fields that are usually all zero behind a single bit, and Bools
// writes several booleans at once, as their bits in the mask. Times and sequence numbers are
// written as distances, short when the numbers are close: a time from the time before, a Seq
// from the Seq before, a SeqFrom from a base the caller keeps per sequence space (a
// connection's two spaces lie far apart, each one's numbers close together).
//
// The varints are prefix varints: the count of 1 bits that end the first byte says how many
// bytes follow it (0 to 7; the number is in the bits above that count and its 0 bit, seven per
// byte, little-endian), and a first byte of 0xff is followed by the 64 bits of the number in
// eight bytes. They take a byte per seven bits, as the usual varints do, but are written and
// read a word at a time, without a loop: encoding keeps room for a few words at the end of Buf
// (so that a field writes without checking), and decoding reads from its input only when there
// is room after it, else from a copy that has.
//
// Packing is on the hot path of a streaming run, and most of its cost is per field: each kind
// of field has one function doing both directions, called from the visitors (or inlined into
// them), with the bit and varint primitives inlined into it; wrappers that would add a call of
// their own are avoided where fields are many.
package pack

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"time"
	"unsafe"

	"github.com/tcpstate/tcpstate/capture"
)

// Codec encodes fields into Buf (Enc) or decodes them from it. Its zero value decodes; set Enc
// to encode, and take the encoding with Encoded. Base is the time that the first Time and Stamp
// (or Stamp) fields are written relative to (each later one, relative to the one before): set
// it (to the same value both ways) before the first of them.
type Codec struct {
	Enc  bool
	Buf  []byte
	Base time.Time

	pos       int         // decode: next byte to read
	maskAt    int         // encode: where the current group's mask is
	bit       uint32      // encode: the next field's bit in its group's mask (0: the group is full)
	emask     uint32      // encode: the current group's mask so far (written out when it ends)
	mask      uint64      // decode: the current group's bits not read yet, under a 1 (0, 1: none left)
	lastNanos int64       // the latest Stamp field (Base at first): the next one is relative to it
	lastSeq   capture.Seq // the latest Seq field: the next one is written relative to it
	lastSec   int64       // the latest Time field (Base at first), in Unix seconds
	lastNsec  int64       // and nanoseconds: the next one is written relative to it
	copied    []byte      // decode: the copy of the input (see Reset), kept for the next one
}

// Reset starts a new encoding into buf[:0] (Enc true) or a new decoding of buf. Decoding reads
// a word where a varint starts, so it reads from a copy of buf when buf has no room after it.
func (k *Codec) Reset(enc bool, buf []byte) {
	if enc {
		*k = Codec{Enc: true, Buf: buf[:0], copied: k.copied}
		return
	}
	if cap(buf)-len(buf) < wordRoom {
		buf = k.copy(buf)
	}
	*k = Codec{Buf: buf, copied: k.copied}
}

// ResetString starts a new decoding of s (of a copy of it: see Reset).
func (k *Codec) ResetString(s string) {
	buf := k.copy(unsafe.Slice(unsafe.StringData(s), len(s)))
	*k = Codec{Buf: buf, copied: k.copied}
}

// copy copies b into k.copied, with room after it, and returns the copy.
func (k *Codec) copy(b []byte) []byte {
	if cap(k.copied) < len(b)+wordRoom {
		k.copied = make([]byte, 0, max(2*cap(k.copied), len(b)+wordRoom))
	}
	return append(k.copied[:0], b...)
}

// Encoded finishes an encoding (it writes the mask of the last group) and returns Buf. Fields
// may follow: call it again after them.
func (k *Codec) Encoded() []byte {
	if k.maskAt < len(k.Buf) {
		binary.LittleEndian.PutUint32(k.Buf[k.maskAt:], k.emask)
	}
	return k.Buf
}

// Pos is how many bytes have been decoded (or encoded) so far.
func (k *Codec) Pos() int {
	if k.Enc {
		return len(k.Buf)
	}
	return k.pos
}

// groupSize is how many fields a mask covers.
const groupSize = 32

// maxVarint is the longest varint.
const maxVarint = 9

// wordRoom is the room decoding needs after its input: a varint is read as the word where it
// starts, a mask as the four bytes.
const wordRoom = 8

// WordRoom is wordRoom, for callers that keep their blobs with room after them (Reset then
// decodes them in place, without a copy).
const WordRoom = wordRoom

// room is the spare capacity Buf has when a group starts (encoding): enough for its mask and
// its fields of two varints each (a Time far from the one before, a decimal that escapes), so that
// fields write without checking. What writes bytes of any length (appendBytes) makes room
// again after.
const room = groupSize/8 + groupSize*2*maxVarint

// group ends the group of fields (encoding), writing its mask, and starts the next one.
//
//go:noinline
func (k *Codec) group() {
	if k.maskAt < len(k.Buf) {
		binary.LittleEndian.PutUint32(k.Buf[k.maskAt:], k.emask)
	}
	k.emask = 0
	if cap(k.Buf)-len(k.Buf) < room {
		k.grow()
	}
	n := len(k.Buf)
	k.Buf = k.Buf[:n+groupSize/8]
	k.maskAt = n
	k.bit = 1
}

//go:noinline
func (k *Codec) grow() {
	k.Buf = slices.Grow(k.Buf, max(room, 2*len(k.Buf)))
}

// put records (encoding) whether the next field is set.
func (k *Codec) put(set bool) {
	if k.bit == 0 {
		k.group()
	}
	if set {
		k.emask |= k.bit
	}
	k.bit <<= 1
}

// get reads (decoding) whether the next field is set.
func (k *Codec) get() bool {
	m := k.mask
	if m <= 1 {
		m = uint64(binary.LittleEndian.Uint32(k.Buf[k.pos:k.pos+groupSize/8])) | 1<<groupSize
		k.pos += groupSize / 8
	}
	k.mask = m >> 1
	return m&1 != 0
}

// putVarint writes v (encoding), in the room there is: it stores the word that holds the
// varint (or a byte and the word), then moves the end to where it ends. (Where it counts, a
// varint of one byte is written apart: putVarint1.)
func (k *Codec) putVarint(v uint64) {
	n := len(k.Buf)
	w := k.Buf[n : n+maxVarint]
	c := varintCode[bits.Len64(v)]
	size := uint(c >> 8)
	if size < maxVarint {
		binary.LittleEndian.PutUint64(w, v<<size|uint64(c&0xff))
	} else {
		w[0] = 0xff
		binary.LittleEndian.PutUint64(w[1:], v)
	}
	k.Buf = k.Buf[:n+int(size)]
}

// varintCode is, for a number of so many bits, the size of its varint (in the high byte) and
// the bits its first byte ends with (in the low byte: a 1 per byte that follows, then a 0).
var varintCode = func() (t [65]uint16) {
	for n := range t {
		size := min(max((n+6)/7, 1), maxVarint)
		t[n] = uint16(size<<8 | (1<<(size-1) - 1))
	}
	return t
}()

// putVarint1 writes v (encoding) if it fits in a varint of one byte, and reports whether it did.
func (k *Codec) putVarint1(v uint64) bool {
	if v >= 0x80 {
		return false
	}
	n := len(k.Buf)
	k.Buf = k.Buf[:n+1]
	k.Buf[n] = byte(v << 1)
	return true
}

// getVarint reads a varint (decoding): it loads the word where it starts, and keeps its bits.
// (Where it counts, a varint of one byte is read apart: getVarint1.)
func (k *Codec) getVarint() uint64 {
	i := k.pos
	x := binary.LittleEndian.Uint64(k.Buf[i : i+8])
	size := uint(bits.TrailingZeros8(^uint8(x))) + 1 // 1..9
	if size == maxVarint {
		k.pos = i + maxVarint
		return binary.LittleEndian.Uint64(k.Buf[i+1 : i+maxVarint])
	}
	k.pos = i + int(size)
	return x & varintMask[size&7] >> size
}

// varintMask keeps the bytes of a varint of so many bytes (but nine) from a word (0: eight).
var varintMask = [8]uint64{0: 1<<64 - 1, 1: 1<<8 - 1, 2: 1<<16 - 1, 3: 1<<24 - 1, 4: 1<<32 - 1,
	5: 1<<40 - 1, 6: 1<<48 - 1, 7: 1<<56 - 1}

// getVarint1 reads a varint (decoding) if it takes one byte, and reports whether it did.
func (k *Codec) getVarint1() (uint64, bool) {
	b := k.Buf[k.pos]
	if b&1 != 0 {
		return 0, false
	}
	k.pos++
	return uint64(b >> 1), true
}

// appendBytes writes b (encoding), and makes room again.
func (k *Codec) appendBytes(b string) {
	k.Buf = append(k.Buf, b...)
	if cap(k.Buf)-len(k.Buf) < room {
		k.grow()
	}
}

// bytes reads n bytes (decoding).
func (k *Codec) bytes(n int) []byte {
	b := k.Buf[k.pos : k.pos+n : len(k.Buf)]
	k.pos += n
	return b
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// The field functions below do all their work themselves, the primitives inlined, rather than
// through a common one: a wrapper the compiler does not inline would cost a second call per
// field (and profile-guided inlining of the inner function can make the wrapper too big to
// inline).

// Uint is any unsigned integer field.
func Uint[T ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint](k *Codec, p *T) {
	if k.Enc {
		if k.bit == 0 {
			k.group()
		}
		if v := uint64(*p); v != 0 {
			k.emask |= k.bit
			if !k.putVarint1(v) {
				k.putVarint(v)
			}
		}
		k.bit <<= 1
		return
	}
	if !k.get() {
		*p = 0
	} else if v, ok := k.getVarint1(); ok {
		*p = T(v)
	} else {
		*p = T(k.getVarint())
	}
}

// Int is any signed integer field (time.Duration included), zigzag encoded.
func Int[T ~int8 | ~int16 | ~int32 | ~int64 | ~int](k *Codec, p *T) {
	if k.Enc {
		if k.bit == 0 {
			k.group()
		}
		if v := int64(*p); v != 0 {
			k.emask |= k.bit
			if z := zigzag(v); !k.putVarint1(z) {
				k.putVarint(z)
			}
		}
		k.bit <<= 1
		return
	}
	if !k.get() {
		*p = 0
	} else if u, ok := k.getVarint1(); ok {
		*p = T(unzigzag(u))
	} else {
		*p = T(unzigzag(k.getVarint()))
	}
}

// Default is an integer field that usually holds def: it is written as its difference.
func Default[T ~int8 | ~int16 | ~int32 | ~int64 | ~int | ~uint8 | ~uint16 | ~uint32 | ~uint64](k *Codec, p *T, def T) {
	d := int64(*p) - int64(def)
	Int(k, &d)
	if !k.Enc {
		*p = T(d + int64(def))
	}
}

// Len is a slice's length, written before its elements: encoding returns n, decoding the
// length that was written.
func (k *Codec) Len(n int) int {
	if k.Enc {
		k.put(n != 0)
		if n != 0 {
			k.putVarint(uint64(n))
		}
		return n
	}
	if !k.get() {
		return 0
	}
	return int(k.getVarint())
}

// Bool is a boolean field: its presence bit is its value.
func (k *Codec) Bool(p *bool) {
	if k.Enc {
		k.put(*p)
		return
	}
	*p = k.get()
}

// Bools is as many Bool fields, at most 32, visited at once: one call where there would be one
// per boolean, and the same bits.
func (k *Codec) Bools(ps ...*bool) {
	n := uint(len(ps))
	if k.Enc {
		var w uint64
		for i, p := range ps {
			w |= b2u(*p) << (i & 63)
		}
		if k.bit != 0 && n <= uint(bits.LeadingZeros32(k.bit))+1 {
			k.emask |= uint32(w) * k.bit // the group has room for them
			k.bit <<= n
		} else {
			k.putBits(w, n)
		}
		return
	}
	w := k.getBits(n)
	for _, p := range ps {
		*p = w&1 != 0
		w >>= 1
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// putBits records (encoding) the n lowest bits of w (and no others) as the next n fields' bits,
// n at most groupSize: the first ones in what is left of the group, the others in the next one.
//
//go:noinline
func (k *Codec) putBits(w uint64, n uint) {
	if n > groupSize {
		panic("pack: more than 32 Bools at once")
	}
	if k.bit == 0 {
		k.group()
	}
	if left := uint(bits.LeadingZeros32(k.bit)) + 1; n > left {
		// The bits beyond the group's end: the product drops them, the next group takes them.
		k.emask |= uint32(w) * k.bit
		w, n = w>>left, n-left
		k.group()
	}
	k.emask |= uint32(w) * k.bit
	k.bit <<= n
}

// getBits reads (decoding) the next n fields' bits, n at most groupSize (the first field's is
// the lowest).
func (k *Codec) getBits(n uint) uint64 {
	m := max(k.mask, 1) // a 0 has no bit left either
	if left := uint(bits.Len64(m)) - 1; n > left {
		// The group's bits left, then the next group's under them.
		next := uint64(binary.LittleEndian.Uint32(k.Buf[k.pos:k.pos+groupSize/8])) | 1<<groupSize
		k.pos += groupSize / 8
		m = m&^(1<<left) | next<<left
	}
	k.mask = m >> n
	return m & (1<<n - 1)
}

// Block is a presence bit for a group of fields that are usually all zero: encoding, it says
// whether any is set (then they follow), and decoding, whether they were. Only encoding needs
// set: write k.Block(k.Enc && ...) to spare decoding the test.
func (k *Codec) Block(set bool) bool {
	if k.Enc {
		k.put(set)
		return set
	}
	return k.get()
}

// String is a string field.
func (k *Codec) String(p *string) {
	if k.Enc {
		k.put(*p != "")
		if *p != "" {
			k.putVarint(uint64(len(*p)))
			k.appendBytes(*p)
		}
		return
	}
	if !k.get() {
		*p = ""
		return
	}
	*p = string(k.bytes(int(k.getVarint())))
}

// Bytes is a byte slice field; decoding appends to (*p)[:0], so a buffer is reused. An empty
// slice decodes as (*p)[:0] (nil stays nil).
func (k *Codec) Bytes(p *[]byte) {
	if k.Enc {
		k.put(len(*p) != 0)
		if len(*p) != 0 {
			k.putVarint(uint64(len(*p)))
			k.appendBytes(unsafe.String(unsafe.SliceData(*p), len(*p)))
		}
		return
	}
	if !k.get() {
		*p = (*p)[:0]
		return
	}
	*p = append((*p)[:0], k.bytes(int(k.getVarint()))...)
}

// SetBase sets the time base (see Codec): the next Time and Stamp fields are written relative
// to it. Both directions must set the same one at the same point.
func (k *Codec) SetBase(t time.Time) {
	k.Base = t
	k.lastSec, k.lastNsec = t.Unix(), int64(t.Nanosecond())
	k.lastNanos = t.UnixNano()
}

// maxDelta bounds the seconds a time may lie from the one before to be written as one varint:
// 2^30 s (34 years) keeps them and 30 bits of nanoseconds, zigzag, the code and the far flag
// within 64 bits.
const maxDelta = 1 << 30

// zeroUnix is the zero time in Unix seconds.
const zeroUnix = -62135596800

// Time is a time field. Times from captures are UTC without a monotonic reading, and decode as
// such; the zero time stays zero. A time is written relative to the Time field before it (or to
// Base, for the first): a connection's times are close together, and many are equal (the
// distance then takes one byte). Within 34 years, the distance takes one varint: its seconds,
// then (below them) its fraction of a second in microseconds when it can be (as between
// microsecond captures' times; 20 bits), else in nanoseconds (30 bits), or nothing when it is
// whole seconds, and a code for which of the three; further away (crafted timestamps), seconds
// and nanoseconds are written apart, so every time survives exactly. The lowest bit of the
// first varint says which.
func (k *Codec) Time(p *time.Time) {
	if k.Enc {
		sec, nsec := p.Unix(), int64(p.Nanosecond())
		set := sec != zeroUnix || nsec != 0
		k.put(set)
		if set {
			k.putTime(sec, nsec)
		}
		return
	}
	if !k.get() {
		*p = time.Time{}
		return
	}
	sec, nsec := k.getTime()
	*p = time.Unix(sec, nsec).UTC()
}

// putTime writes (encoding) a set time, sec and nsec (0 <= nsec < 1e9), relative to the one
// before: see Time.
func (k *Codec) putTime(sec, nsec int64) {
	dsec, dnsec := sec-k.lastSec, nsec-k.lastNsec
	if dnsec < 0 {
		dsec, dnsec = dsec-1, dnsec+1e9
	}
	k.lastSec, k.lastNsec = sec, nsec
	if dsec <= -maxDelta || dsec >= maxDelta {
		k.putVarint(zigzag(dsec)<<1 | 1)
		k.putVarint(uint64(dnsec))
		return
	}
	var d uint64
	switch {
	case dnsec == 0:
		d = zigzag(dsec)<<2 | timeSec
	case dnsec%1000 == 0:
		d = zigzag(dsec<<20|dnsec/1000)<<2 | timeMicro
	default:
		d = zigzag(dsec<<30|dnsec)<<2 | timeNano
	}
	k.putVarint(d << 1)
}

// getTime reads (decoding) what putTime wrote.
func (k *Codec) getTime() (sec, nsec int64) {
	var dsec, dnsec int64
	if u := k.getVarint(); u&1 != 0 {
		dsec, dnsec = unzigzag(u>>1), int64(k.getVarint())
	} else {
		v := unzigzag(u >> 3)
		switch u >> 1 & 3 {
		case timeSec:
			dsec = v
		case timeMicro:
			dsec, dnsec = v>>20, v&(1<<20-1)*1000
		default:
			dsec, dnsec = v>>30, v&(1<<30-1)
		}
	}
	sec, nsec = k.lastSec+dsec, k.lastNsec+dnsec
	if nsec >= 1e9 {
		sec, nsec = sec+1, nsec-1e9
	}
	k.lastSec, k.lastNsec = sec, nsec
	return sec, nsec
}

// Codes of a Time's fraction of a second.
const (
	timeNano  = 0
	timeMicro = 1
	timeSec   = 2
)

// decimal writes a signed number of nanoseconds as its significant digits and a code for the
// zeros that end it (0: none, 1: three, 2: nine): times and durations from microsecond
// captures, and timers of whole seconds, come out a byte or two shorter. Code 3 is an escape:
// the number follows whole (when it is too large to leave room for the code).
func decimal(v int64) uint64 {
	m, code := v, uint64(0)
	if q := v / 1e3; v != 0 && q*1e3 == v { // whole microseconds: the quotient is kept
		m, code = q, 1
		if r := q / 1e6; r*1e6 == q {
			m, code = r, 2
		}
	}
	z := zigzag(m)
	if z >= 1<<61 {
		return 3
	}
	return z<<2 | code
}

// putDecimal writes v (encoding) in decimal form: a varint, and the number whole after the
// escape.
func (k *Codec) putDecimal(v int64) {
	d := decimal(v)
	k.putVarint(d)
	if d == 3 {
		k.putVarint(zigzag(v))
	}
}

// getDecimal reads a number in decimal form (decoding).
func (k *Codec) getDecimal() int64 {
	u := k.getVarint()
	if u&3 == 3 {
		return unzigzag(k.getVarint())
	}
	return unzigzag(u>>2) * decimalScale[u&3]
}

// Dur is a duration field (decimal, see Time).
func (k *Codec) Dur(p *time.Duration) {
	if k.Enc {
		k.put(*p != 0)
		if *p != 0 {
			k.putDecimal(int64(*p))
		}
		return
	}
	*p = 0
	if k.get() {
		*p = time.Duration(k.getDecimal())
	}
}

// Stamp is a time held as Unix nanoseconds with the sign bit flipped (0: unset; so the epoch
// is a time like any other), written relative to the Stamp field before it, or to Base for
// the first, in decimal form. (It is on the hot path of packing: decimal
// form is written and read here, without a call.)
func Stamp[T ~uint64](k *Codec, p *T) {
	if k.Enc {
		if k.bit == 0 {
			k.group()
		}
		if *p != 0 {
			k.emask |= k.bit
			n := int64(*p ^ 1<<63)
			d := n - k.lastNanos
			k.lastNanos = n
			if d == 0 {
				k.putVarint1(0) // decimal(0)
			} else if q := d / 1e3; q*1e3 == d && uint64(q+1e6-1) <= 2e6-2 {
				// Whole microseconds, under a second (from microsecond captures, the usual
				// delta): decimal(d), without its second division.
				k.putVarint(zigzag(q)<<2 | 1)
			} else if u := decimal(d); u != 3 {
				k.putVarint(u)
			} else {
				k.putDecimal(d)
			}
		}
		k.bit <<= 1
		return
	}
	if !k.get() {
		*p = 0
		return
	}
	var d int64
	if u := k.getVarint(); u&3 != 3 {
		d = unzigzag(u>>2) * decimalScale[u&3]
	} else {
		d = unzigzag(k.getVarint())
	}
	n := d + k.lastNanos
	k.lastNanos = n
	*p = T(uint64(n) ^ 1<<63)
}

// decimalScale is what the significant digits of a number in decimal form are multiplied by,
// by its code (3, the escape, has none).
var decimalScale = [4]int64{1, 1e3, 1e9, 0}

// Seq is a 32-bit sequence number field, written as its distance from the previous Seq field
// (a connection's sequence numbers cluster around two initial ones).
func (k *Codec) Seq(p *capture.Seq) {
	if k.Enc {
		d := int32(*p - k.lastSeq)
		if k.bit == 0 {
			k.group()
		}
		if d != 0 {
			k.emask |= k.bit
			if z := uint64(uint32(d<<1) ^ uint32(d>>31)); !k.putVarint1(z) {
				k.putVarint(z)
			}
		}
		k.bit <<= 1
		k.lastSeq = *p
		return
	}
	if k.get() {
		u, ok := k.getVarint1()
		if !ok {
			u = k.getVarint()
		}
		k.lastSeq += capture.Seq(int32(u>>1) ^ -int32(u&1))
	}
	*p = k.lastSeq
}

// SeqFrom is a 32-bit sequence number field written as its distance from *base, which it then
// sets to it: a running base per sequence space (a direction's own sequence numbers, its
// acknowledgments of the other's), where Seq has one for all, keeps each distance short. The
// caller keeps the bases, the same both ways. (It is Seq with the base apart: on the hot path of
// packing, so written out rather than through a common function.)
func (k *Codec) SeqFrom(p *capture.Seq, base *capture.Seq) {
	if k.Enc {
		d := int32(*p - *base)
		if k.bit == 0 {
			k.group()
		}
		if d != 0 {
			k.emask |= k.bit
			if z := uint64(uint32(d<<1) ^ uint32(d>>31)); !k.putVarint1(z) {
				k.putVarint(z)
			}
		}
		k.bit <<= 1
		*base = *p
		return
	}
	v := *base
	if k.get() {
		u, ok := k.getVarint1()
		if !ok {
			u = k.getVarint()
		}
		v += capture.Seq(int32(u>>1) ^ -int32(u&1))
	}
	*base, *p = v, v
}

// Interner numbers the strings a Codec writes with Dict, so that a string written many times
// (a diagnosis text, an evidence line) is stored once. The encoder and the decoder of a value
// must share it. It numbers at most maxInterned strings; beyond, strings are written out.
type Interner struct {
	index map[string]uint32
	strs  []string
}

const maxInterned = 1024

// Dict is a string field written as its number in in (strings first seen are numbered then).
func (k *Codec) Dict(p *string, in *Interner) {
	if !k.Block(*p != "") {
		if !k.Enc {
			*p = ""
		}
		return
	}
	if k.Enc {
		n, ok := in.index[*p]
		if !ok && len(in.strs) < maxInterned {
			if in.index == nil {
				in.index = make(map[string]uint32)
			}
			in.strs = append(in.strs, *p)
			n, ok = uint32(len(in.strs)), true
			in.index[*p] = n
		}
		if ok {
			k.putVarint(uint64(n))
			return
		}
		k.putVarint(0)
		k.putVarint(uint64(len(*p)))
		k.appendBytes(*p)
		return
	}
	if n := k.getVarint(); n > 0 {
		*p = in.strs[n-1]
		return
	}
	*p = string(k.bytes(int(k.getVarint())))
}

// AddrPort is an address and port field (IPv4 in 4 bytes, IPv6 in 16 and its zone).
func (k *Codec) AddrPort(p *netip.AddrPort) {
	if !k.Block(p.IsValid()) {
		if !k.Enc {
			*p = netip.AddrPort{}
		}
		return
	}
	if k.Enc {
		if a := p.Addr(); a.Is4() {
			n := len(k.Buf)
			w := k.Buf[n : n+5]
			w[0] = 4
			*(*[4]byte)(w[1:]) = a.As4()
			k.Buf = k.Buf[:n+5]
		} else {
			at := len(k.Buf)
			k.Buf = append(k.Buf, 0)
			k.Buf, _ = a.AppendBinary(k.Buf)
			k.Buf[at] = byte(len(k.Buf) - at - 1)
			k.appendBytes("")
		}
		k.putVarint(uint64(p.Port()))
		return
	}
	var a netip.Addr
	if n := int(k.bytes(1)[0]); n == 4 {
		a = netip.AddrFrom4([4]byte(k.bytes(4)))
	} else if err := a.UnmarshalBinary(k.bytes(n)); err != nil {
		panic("pack: damaged address")
	}
	*p = netip.AddrPortFrom(a, uint16(k.getVarint()))
}

// GrowTo returns s with length n, reusing its array when it is big enough; decoding a slice
// that was nil gives nil.
func GrowTo[T any](s []T, n int) []T {
	if n == 0 {
		if s == nil {
			return nil
		}
		return s[:0]
	}
	if cap(s) >= n {
		return s[:n]
	}
	return make([]T, n)
}
