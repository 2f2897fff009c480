// Package capture turns captured bytes (pcap and pcapng files, live interfaces) into Segments:
// small value types holding just what TCP state tracking needs. Nothing downstream of this
// package imports gopacket.
package capture

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Flags are the TCP header flags, bit for bit as on the wire (FIN is bit 0 ... CWR bit 7).
type Flags uint8

const (
	FIN Flags = 1 << iota
	SYN
	RST
	PSH
	ACK
	URG
	ECE
	CWR
)

// Has reports whether every flag in f2 is set in f.
func (f Flags) Has(f2 Flags) bool { return f&f2 == f2 }

// String writes the flags the way tcpdump does: S, F, R, P, U, E, W, and "." for ACK.
func (f Flags) String() string {
	var b strings.Builder
	for _, x := range []struct {
		f Flags
		c byte
	}{{SYN, 'S'}, {FIN, 'F'}, {RST, 'R'}, {PSH, 'P'}, {URG, 'U'}, {ECE, 'E'}, {CWR, 'W'}, {ACK, '.'}} {
		if f&x.f != 0 {
			b.WriteByte(x.c)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Tunnel kinds a segment may have been carried in (0 means none).
type TunnelKind uint8

const (
	TunnelNone TunnelKind = iota
	TunnelIPIP
	TunnelGRE
	TunnelVXLAN
	TunnelGeneve
	TunnelTeredo
	TunnelGTPU
	TunnelMPLS
)

// Segment is one TCP segment as seen on the wire. It is a plain value: copy it, compare it,
// keep it; it holds no reference to the packet buffer.
type Segment struct {
	Time time.Time
	Src  netip.AddrPort
	Dst  netip.AddrPort

	Seq, Ack Seq
	Flags    Flags
	Window   uint16 // raw, unscaled header value

	// PayloadLen is the TCP payload length the IP header claims (not what the snaplen kept).
	PayloadLen uint32
	// IPLen is the IP datagram length from the IP header (Zeek's ip_bytes).
	IPLen uint32

	// What the IP header says of its sender, for telling an endpoint's own packets from ones
	// forged in its name and for guessing its OS: TTL (IPv6 hop limit) as seen at the capture
	// point, IPv4 identification and don't-fragment bit, IPv6 flow label. Of the innermost
	// header that carried the TCP segment.
	TTL       uint8
	DF        bool
	IPID      uint16
	FlowLabel uint32

	// Options that matter to state tracking. Absent options are zero with their Has bit clear.
	Opts Options

	// Where the segment came from: index of the input file (0 for the first -r or live) and
	// 1-based packet number within that input, plus the byte offset of its record.
	File   uint16
	Packet uint64
	Offset int64

	// Truncated is set when the snaplen cut the TCP header or options short; the fixed 20-byte
	// header is always complete in a Segment.
	Truncated bool
	// BadChecksum is set when a checksum could be verified and was wrong (only when the whole
	// packet was captured).
	BadChecksum bool

	// Tunnel is the outermost encapsulation, if any, and its outer endpoints.
	Tunnel    TunnelKind
	TunnelSrc netip.Addr
	TunnelDst netip.Addr
	TunnelVNI uint32 // VXLAN/Geneve VNI, GTP TEID, GRE key, MPLS label
}

// Options are the TCP options that change how a stack treats a connection.
type Options struct {
	Has      OptionBits
	MSS      uint16
	WScale   uint8
	TSVal    uint32
	TSEcr    uint32
	FastOpen bool // a TFO option (kind 34 or experimental 254/0xF989) was present
	// Layout is the order of the option kinds, as p0f reads it (a stack's signature): the
	// first eight kinds, one byte each, the first in the lowest byte (NOP is 1; EOL, which
	// ends a list early, is written 255 so that 0 means no more options). 0 for no options.
	Layout OptionLayout
}

// OptionLayout lists the kinds of up to eight TCP options in the order they came.
type OptionLayout uint64

// layoutEOL stands for the end-of-list option in an OptionLayout.
const layoutEOL = 255

// Kinds returns the option kinds in order.
func (l OptionLayout) Kinds() []uint8 {
	var k []uint8
	for i := 0; i < 8; i++ {
		b := uint8(l >> (8 * i))
		if b == 0 {
			break
		}
		if b == layoutEOL {
			b = 0
		}
		k = append(k, b)
	}
	return k
}

// String writes the layout the way p0f does: mss,nop,ws,sok,ts,sack,eol,... ("" for none).
func (l OptionLayout) String() string {
	var b strings.Builder
	for i, k := range l.Kinds() {
		if i > 0 {
			b.WriteByte(',')
		}
		switch k {
		case 0:
			b.WriteString("eol")
		case 1:
			b.WriteString("nop")
		case 2:
			b.WriteString("mss")
		case 3:
			b.WriteString("ws")
		case 4:
			b.WriteString("sok")
		case 5:
			b.WriteString("sack")
		case 8:
			b.WriteString("ts")
		default:
			b.WriteByte('?')
			b.WriteString(strconv.Itoa(int(k)))
		}
	}
	return b.String()
}

// OptionBits records which options were present.
type OptionBits uint8

const (
	HasMSS OptionBits = 1 << iota
	HasWScale
	HasSACKPerm
	HasSACK
	HasTimestamps
)

// End is the sequence number just past this segment: SYN and FIN each take one number.
func (s *Segment) End() Seq {
	n := s.Seq + Seq(s.PayloadLen)
	if s.Flags&SYN != 0 {
		n++
	}
	if s.Flags&FIN != 0 {
		n++
	}
	return n
}
