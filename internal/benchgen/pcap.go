package benchgen

import (
	"bufio"
	"encoding/binary"
	"io"
)

// The writer is hand-rolled rather than pcapgo.Writer: it builds every frame in one reused
// buffer and computes the TCP checksum of the payload from a prefix-sum table, so writing a
// gigabyte costs little more than the copy.

const (
	linkEthernet  = 1
	maxSnaplen    = 262144 // libpcap's MAXIMUM_SNAPLEN, tcpdump's default
	ethHeaderLen  = 14
	ipHeaderLen   = 20
	tcpHeaderLen  = 20
	minEtherFrame = 60 // without FCS: what a NIC hands up for a short received frame

	tlsRecordHeader = 5
)

// TCP flags as on the wire.
const (
	flagFIN = 1 << iota
	flagSYN
	flagRST
	flagPSH
	flagACK
)

// mac is an Ethernet address.
type mac [6]byte

// ip4 is an IPv4 address.
type ip4 [4]byte

func ip4From(u uint32) ip4 { return ip4{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)} }

// tcpOptions is a TCP option block, at most 40 bytes, built without allocation.
type tcpOptions struct {
	b [40]byte
	n int
}

func (o *tcpOptions) reset()         { o.n = 0 }
func (o *tcpOptions) bytes() []byte  { return o.b[:o.n] }
func (o *tcpOptions) nop()           { o.b[o.n] = 1; o.n++ }
func (o *tcpOptions) put(b ...byte)  { o.n += copy(o.b[o.n:], b) }
func (o *tcpOptions) mss(v uint16)   { o.put(2, 4, byte(v>>8), byte(v)) }
func (o *tcpOptions) sackPerm()      { o.put(4, 2) }
func (o *tcpOptions) wscale(v uint8) { o.put(3, 3, v) }
func (o *tcpOptions) timestamps(val, ecr uint32) {
	o.put(8, 10)
	binary.BigEndian.PutUint32(o.b[o.n:], val)
	binary.BigEndian.PutUint32(o.b[o.n+4:], ecr)
	o.n += 8
}

// sack writes a SACK option with the given [left, right) edges (at most 4 blocks; 3 with
// timestamps).
func (o *tcpOptions) sack(edges [][2]uint32) {
	o.put(5, byte(2+8*len(edges)))
	for _, e := range edges {
		binary.BigEndian.PutUint32(o.b[o.n:], e[0])
		binary.BigEndian.PutUint32(o.b[o.n+4:], e[1])
		o.n += 8
	}
}

// synLinux is the option block of a Linux SYN or SYN-ACK: MSS, SACK-permitted, timestamps,
// NOP, window scale (20 bytes).
func (o *tcpOptions) synLinux(mss uint16, tsval, tsecr uint32, ws uint8) {
	o.reset()
	o.mss(mss)
	o.sackPerm()
	o.timestamps(tsval, tsecr)
	o.nop()
	o.wscale(ws)
}

// tsOnly is the option block of an established Linux segment: NOP, NOP, timestamps.
func (o *tcpOptions) tsOnly(tsval, tsecr uint32) {
	o.reset()
	o.nop()
	o.nop()
	o.timestamps(tsval, tsecr)
}

// packet is one TCP/IPv4/Ethernet frame to write.
type packet struct {
	at             int64 // nanoseconds since the capture's start
	srcMAC, dstMAC mac
	src, dst       ip4
	sport, dport   uint16
	ipID           uint16
	ttl            uint8
	seq, ack       uint32
	flags          uint8
	window         uint16
	opts           *tcpOptions // nil: none
	payload        int         // bytes of payload (taken from the filler)
	padShort       bool        // pad to 60 bytes, as a frame received from the wire is
	// tls makes the payload one TLS application-data record (a 5-byte record header, then
	// the filler), so that dissectors see well-formed TLS on port 443.
	tls bool
}

// pcapWriter writes a classic pcap file (little-endian, microsecond timestamps, Ethernet) as
// tcpdump -w does.
type pcapWriter struct {
	w       *bufio.Writer
	snaplen int
	base    int64 // Unix time of the capture's start, nanoseconds
	frame   []byte
	fill    *filler
	packets int64
	bytes   int64
	lastAt  int64
}

func newPCAPWriter(w io.Writer, snaplen int, base int64, fill *filler) (*pcapWriter, error) {
	if snaplen <= 0 || snaplen > maxSnaplen {
		snaplen = maxSnaplen
	}
	p := &pcapWriter{w: bufio.NewWriterSize(w, 1<<20), snaplen: snaplen, base: base,
		frame: make([]byte, 0, 16+ethHeaderLen+ipHeaderLen+tcpHeaderLen+40+len(fill.data)), fill: fill}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], uint32(snaplen))
	binary.LittleEndian.PutUint32(h[20:], linkEthernet)
	_, err := p.w.Write(h[:])
	return p, err
}

// write appends one packet record. Records must come in time order (the generators
// guarantee it; a capture from one interface is in time order).
func (p *pcapWriter) write(pk *packet) error {
	if pk.at < p.lastAt {
		panic("benchgen: packets written out of time order")
	}
	p.lastAt = pk.at
	var optLen int
	if pk.opts != nil {
		optLen = pk.opts.n
	}
	tcpLen := tcpHeaderLen + optLen
	ipLen := ipHeaderLen + tcpLen + pk.payload
	frameLen := ethHeaderLen + ipLen
	wireLen := frameLen
	if pk.padShort && wireLen < minEtherFrame {
		wireLen = minEtherFrame
	}
	capLen := min(wireLen, p.snaplen)

	b := p.frame[:16+ethHeaderLen+ipHeaderLen+tcpLen]
	t := p.base + pk.at
	binary.LittleEndian.PutUint32(b[0:], uint32(t/1e9))
	binary.LittleEndian.PutUint32(b[4:], uint32(t%1e9/1e3))
	binary.LittleEndian.PutUint32(b[8:], uint32(capLen))
	binary.LittleEndian.PutUint32(b[12:], uint32(wireLen))

	e := b[16:]
	copy(e[0:6], pk.dstMAC[:])
	copy(e[6:12], pk.srcMAC[:])
	binary.BigEndian.PutUint16(e[12:], 0x0800)

	ip := e[ethHeaderLen:]
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(ipLen))
	binary.BigEndian.PutUint16(ip[4:], pk.ipID)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8], ip[9] = pk.ttl, 6
	ip[10], ip[11] = 0, 0
	copy(ip[12:16], pk.src[:])
	copy(ip[16:20], pk.dst[:])
	binary.BigEndian.PutUint16(ip[10:], fold(sum16(ip[:ipHeaderLen])))

	tcp := ip[ipHeaderLen:]
	binary.BigEndian.PutUint16(tcp[0:], pk.sport)
	binary.BigEndian.PutUint16(tcp[2:], pk.dport)
	binary.BigEndian.PutUint32(tcp[4:], pk.seq)
	binary.BigEndian.PutUint32(tcp[8:], pk.ack)
	tcp[12] = byte(tcpLen/4) << 4
	tcp[13] = pk.flags
	binary.BigEndian.PutUint16(tcp[14:], pk.window)
	tcp[16], tcp[17], tcp[18], tcp[19] = 0, 0, 0, 0
	if optLen > 0 {
		copy(tcp[tcpHeaderLen:], pk.opts.bytes())
	}
	start := len(b)
	b = append(b, p.fill.data[:pk.payload]...)
	head := 0 // payload bytes that differ from the filler
	if pk.tls && pk.payload > tlsRecordHeader {
		head = tlsRecordHeader + 1 // even, so the rest lines up with the filler's words
		b[start], b[start+1], b[start+2] = 23, 3, 3
		binary.BigEndian.PutUint16(b[start+3:], uint16(pk.payload-tlsRecordHeader))
	}
	// Pseudo-header, header, payload. The header is always an even number of bytes, so the
	// payload's words line up with the filler's prefix sums.
	s := sum16(ip[12:20]) + 6 + uint64(tcpLen+pk.payload) + sum16(tcp[:tcpLen]) +
		sum16(b[start:start+head]) + p.fill.sum(pk.payload) - p.fill.sum(head)
	binary.BigEndian.PutUint16(tcp[16:], fold(s))

	if wireLen > frameLen {
		var zeros [minEtherFrame]byte
		b = append(b, zeros[:wireLen-frameLen]...)
	}
	b = b[:16+capLen]
	p.packets++
	p.bytes += int64(len(b))
	_, err := p.w.Write(b)
	return err
}

func (p *pcapWriter) flush() error { return p.w.Flush() }

// sum16 adds b as big-endian 16-bit words (an odd last byte is the high half of a word).
func sum16(b []byte) uint64 {
	var s uint64
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// fold finishes an Internet checksum: the ones' complement of the folded ones'-complement sum.
func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// filler is the payload every packet carries (its first n bytes), with prefix checksums.
type filler struct {
	data   []byte
	prefix []uint64 // prefix[n]: sum16(data[:n])
}

func newFiller(r *rng, n int) *filler {
	// Printable text, so that tools printing payloads (tcpdump -A) behave as on real traffic.
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 /:=-.\r\n"
	f := &filler{data: make([]byte, n), prefix: make([]uint64, n+1)}
	for i := range f.data {
		f.data[i] = alphabet[r.IntN(len(alphabet))]
	}
	for i := 0; i < n; i += 2 {
		hi := uint64(f.data[i]) << 8
		f.prefix[i+1] = f.prefix[i] + hi
		if i+1 < n {
			f.prefix[i+2] = f.prefix[i] + hi + uint64(f.data[i+1])
		}
	}
	return f
}

func (f *filler) sum(n int) uint64 { return f.prefix[n] }
