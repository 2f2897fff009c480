// Package pack writes and reads a sequence of fields compactly: it is how the tracker keeps a
// quiet connection in a few hundred bytes instead of a few kilobytes (tracker/dormant.go).
//
// One function per struct visits every field in order with a Codec that either encodes or
// decodes, so the two directions cannot drift apart. Fields come in groups of eight behind one
// byte saying which of them are not zero; only those are written, as varints. A connection is
// mostly zeros (a SYN that was never answered sets a few dozen of its ~200 fields), so this
// costs about one byte per eight zero fields and a varint per set one.
package pack

import (
	"encoding/binary"
	"net/netip"
	"time"
	"unsafe"
)

// Codec encodes fields into Buf (Enc) or decodes them from it. Its zero value decodes; set Enc
// to encode. Base is the time that Time fields are written relative to: set it (to the same
// value both ways) before the first Time field.
type Codec struct {
	Enc  bool
	Buf  []byte
	Base time.Time

	pos       int    // decode: next byte to read
	maskAt    int    // encode: where the current group's mask byte is
	mask      byte   // decode: the current group's mask
	bit       uint8  // the next field's bit in its group, 0..7
	base      int64  // Base as Unix seconds
	baseNanos int64  // Base as Unix nanoseconds (wrapping, for Nanos)
	lastSeq   uint32 // the latest Seq field: the next one is written relative to it
}

// Reset starts a new encoding into buf[:0] (Enc true) or a new decoding of buf.
func (k *Codec) Reset(enc bool, buf []byte) {
	if enc {
		buf = buf[:0]
	}
	*k = Codec{Enc: enc, Buf: buf}
}

// ResetString starts a new decoding of s, without copying it (decoding never writes to Buf).
func (k *Codec) ResetString(s string) {
	k.Reset(false, unsafe.Slice(unsafe.StringData(s), len(s)))
}

// Pos is how many bytes have been decoded (or encoded) so far.
func (k *Codec) Pos() int {
	if k.Enc {
		return len(k.Buf)
	}
	return k.pos
}

// present reports, for the next field, whether it is set: when encoding, set says so and the
// mask records it; when decoding, the mask says so.
func (k *Codec) present(set bool) bool {
	if k.bit == 0 {
		if k.Enc {
			k.maskAt = len(k.Buf)
			k.Buf = append(k.Buf, 0)
		} else {
			k.mask = k.Buf[k.pos]
			k.pos++
		}
	}
	b := byte(1) << k.bit
	k.bit = (k.bit + 1) & 7
	if k.Enc {
		if set {
			k.Buf[k.maskAt] |= b
		}
		return set
	}
	return k.mask&b != 0
}

func (k *Codec) uvarint() uint64 {
	v, n := binary.Uvarint(k.Buf[k.pos:])
	if n <= 0 {
		panic("pack: damaged encoding")
	}
	k.pos += n
	return v
}

// U64 is an unsigned field.
func (k *Codec) U64(p *uint64) {
	if k.present(*p != 0) {
		if k.Enc {
			k.Buf = binary.AppendUvarint(k.Buf, *p)
		} else {
			*p = k.uvarint()
		}
	} else if !k.Enc {
		*p = 0
	}
}

// I64 is a signed field (zigzag encoded).
func (k *Codec) I64(p *int64) {
	u := uint64(*p<<1) ^ uint64(*p>>63)
	k.U64(&u)
	if !k.Enc {
		*p = int64(u>>1) ^ -int64(u&1)
	}
}

// Uint is any unsigned integer field.
func Uint[T ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uint](k *Codec, p *T) {
	u := uint64(*p)
	k.U64(&u)
	if !k.Enc {
		*p = T(u)
	}
}

// Int is any signed integer field (time.Duration included).
func Int[T ~int8 | ~int16 | ~int32 | ~int64 | ~int](k *Codec, p *T) {
	i := int64(*p)
	k.I64(&i)
	if !k.Enc {
		*p = T(i)
	}
}

// Bool is a boolean field: its presence bit is its value.
func (k *Codec) Bool(p *bool) {
	v := k.present(*p)
	if !k.Enc {
		*p = v
	}
}

// String is a string field.
func (k *Codec) String(p *string) {
	if k.present(*p != "") {
		if k.Enc {
			k.Buf = binary.AppendUvarint(k.Buf, uint64(len(*p)))
			k.Buf = append(k.Buf, *p...)
		} else {
			n := int(k.uvarint())
			*p = string(k.Buf[k.pos : k.pos+n])
			k.pos += n
		}
	} else if !k.Enc {
		*p = ""
	}
}

// Bytes is a byte slice field; decoding appends to (*p)[:0], so a buffer is reused. An empty
// slice decodes as (*p)[:0] (nil stays nil).
func (k *Codec) Bytes(p *[]byte) {
	if k.present(len(*p) != 0) {
		if k.Enc {
			k.Buf = binary.AppendUvarint(k.Buf, uint64(len(*p)))
			k.Buf = append(k.Buf, *p...)
		} else {
			n := int(k.uvarint())
			*p = append((*p)[:0], k.Buf[k.pos:k.pos+n]...)
			k.pos += n
		}
	} else if !k.Enc {
		*p = (*p)[:0]
	}
}

// Len is a slice's length, written before its elements: encoding returns n, decoding the
// length that was written.
func (k *Codec) Len(n int) int {
	u := uint64(n)
	k.U64(&u)
	return int(u)
}

// maxDelta bounds the seconds a time may lie from Base to be written as one varint of
// nanoseconds: 2^30 s (34 years) keeps nanoseconds, zigzag, the decimal code and the far flag
// within 64 bits.
const maxDelta = 1 << 30

// Time is a time field. Times from captures are UTC without a monotonic reading, and decode as
// such; the zero time stays zero. Within 34 years of Base a time takes one varint of
// nanoseconds from Base (a few bytes, fewer when they end in zeros, as microsecond captures'
// do); further away (crafted timestamps) seconds and nanoseconds are written apart, so every
// time survives exactly.
func (k *Codec) Time(p *time.Time) {
	if k.present(!p.IsZero()) {
		if k.Enc {
			sec, nsec := p.Unix()-k.base, int64(p.Nanosecond())
			if sec > -maxDelta && sec < maxDelta {
				// Within maxDelta the number leaves room for the far flag, and never escapes.
				k.Buf = binary.AppendUvarint(k.Buf, decimal(sec*1e9+nsec)<<1)
			} else {
				k.Buf = binary.AppendUvarint(k.Buf, (uint64(sec<<1)^uint64(sec>>63))<<1|1)
				k.Buf = binary.AppendUvarint(k.Buf, uint64(nsec))
			}
		} else {
			u := k.uvarint()
			if u&1 == 0 {
				*p = time.Unix(k.base, k.undecimal(u>>1)).UTC()
			} else {
				z := u >> 1
				*p = time.Unix(k.base+(int64(z>>1)^-int64(z&1)), int64(k.uvarint())).UTC()
			}
		}
	} else if !k.Enc {
		*p = time.Time{}
	}
}

// decimal writes a signed number of nanoseconds as its significant digits and a code for the
// zeros that end it (0: none, 1: three, 2: nine): times and durations from microsecond
// captures, and timers of whole seconds, come out a byte or two shorter. Code 3 is an escape:
// the number follows whole (when it is too large to leave room for the code).
func decimal(v int64) uint64 {
	m, code := v, uint64(0)
	switch {
	case m != 0 && m%1e9 == 0:
		m, code = m/1e9, 2
	case m != 0 && m%1e3 == 0:
		m, code = m/1e3, 1
	}
	z := zigzag(m)
	if z >= 1<<61 {
		return 3
	}
	return z<<2 | code
}

func zigzag(v int64) uint64   { return uint64(v<<1) ^ uint64(v>>63) }
func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func (k *Codec) appendDecimal(v int64) {
	d := decimal(v)
	k.Buf = binary.AppendUvarint(k.Buf, d)
	if d == 3 {
		k.Buf = binary.AppendUvarint(k.Buf, zigzag(v))
	}
}

func (k *Codec) readDecimal() int64 {
	return k.undecimal(k.uvarint())
}

func (k *Codec) undecimal(u uint64) int64 {
	v := unzigzag(u >> 2)
	switch u & 3 {
	case 1:
		return v * 1e3
	case 2:
		return v * 1e9
	case 3:
		return unzigzag(k.uvarint())
	}
	return v
}

// Dur is a duration field (decimal, see Time).
func (k *Codec) Dur(p *time.Duration) {
	if k.present(*p != 0) {
		if k.Enc {
			k.appendDecimal(int64(*p))
		} else {
			*p = time.Duration(k.readDecimal())
		}
	} else if !k.Enc {
		*p = 0
	}
}

// Seq is a 32-bit sequence number field, written as its distance from the previous Seq field
// (a connection's sequence numbers cluster around two initial ones).
func (k *Codec) Seq(p *uint32) {
	d := int32(*p - k.lastSeq)
	if k.present(d != 0) {
		if k.Enc {
			k.Buf = binary.AppendUvarint(k.Buf, uint64(uint32(d<<1)^uint32(d>>31)))
		} else {
			u := uint32(k.uvarint())
			d = int32(u>>1) ^ -int32(u&1)
		}
	} else {
		d = 0
	}
	if !k.Enc {
		*p = k.lastSeq + uint32(d)
	}
	k.lastSeq = *p
}

// Default is an integer field that usually holds def: it is written as its difference.
func Default[T ~int8 | ~int16 | ~int32 | ~int64 | ~int | ~uint8 | ~uint16 | ~uint32 | ~uint64](k *Codec, p *T, def T) {
	d := int64(*p) - int64(def)
	k.I64(&d)
	if !k.Enc {
		*p = T(d + int64(def))
	}
}

// Block is a presence bit for a group of fields that are usually all zero: encoding, it says
// whether any is set (then they follow), and decoding, whether they were.
func (k *Codec) Block(set bool) bool { return k.present(set) }

// SetBase sets the time base (see Codec); both directions must set the same one at the same
// point.
func (k *Codec) SetBase(t time.Time) {
	k.Base = t
	k.base = t.Unix()
	k.baseNanos = t.UnixNano()
}

// Nanos is a time held as Unix nanoseconds (0: unset), written relative to Base.
func (k *Codec) Nanos(p *int64) {
	if k.present(*p != 0) {
		if k.Enc {
			k.appendDecimal(*p - k.baseNanos)
		} else {
			*p = k.readDecimal() + k.baseNanos
		}
	} else if !k.Enc {
		*p = 0
	}
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
	if !k.present(*p != "") {
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
			k.Buf = binary.AppendUvarint(k.Buf, uint64(n))
			return
		}
		k.Buf = binary.AppendUvarint(k.Buf, 0)
		k.Buf = binary.AppendUvarint(k.Buf, uint64(len(*p)))
		k.Buf = append(k.Buf, *p...)
		return
	}
	if n := k.uvarint(); n > 0 {
		*p = in.strs[n-1]
		return
	}
	n := int(k.uvarint())
	*p = string(k.Buf[k.pos : k.pos+n])
	k.pos += n
}

// AddrPort is an address and port field (IPv4 in 4 bytes, IPv6 in 16 and its zone).
func (k *Codec) AddrPort(p *netip.AddrPort) {
	if !k.present(p.IsValid()) {
		if !k.Enc {
			*p = netip.AddrPort{}
		}
		return
	}
	if k.Enc {
		at := len(k.Buf)
		k.Buf = append(k.Buf, 0)
		k.Buf, _ = p.Addr().AppendBinary(k.Buf)
		k.Buf[at] = byte(len(k.Buf) - at - 1)
		k.Buf = binary.AppendUvarint(k.Buf, uint64(p.Port()))
		return
	}
	n := int(k.Buf[k.pos])
	var a netip.Addr
	if err := a.UnmarshalBinary(k.Buf[k.pos+1 : k.pos+1+n]); err != nil {
		panic("pack: damaged address")
	}
	k.pos += 1 + n
	*p = netip.AddrPortFrom(a, uint16(k.uvarint()))
}
