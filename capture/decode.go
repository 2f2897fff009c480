package capture

import (
	"encoding/binary"
	"net/netip"
)

// The decoder is hand-rolled rather than built on gopacket's DecodingLayerParser, for three
// reasons that all come from what Segment promises:
//
//   - Snaplen-truncated headers. layers.TCP.DecodeFromBytes fails the whole layer ("TCP data
//     offset greater than packet length") when the options were cut by the snaplen, so the
//     segment would be lost; we must deliver it with Truncated set and the options that were
//     complete. Likewise gopacket trusts caplen where we must take lengths from the IP headers.
//   - Allocation. gopacket's layers build error values with fmt/errors on every malformed
//     packet, IPv4 options and IPv6 extension headers are decoded into slices, and the parser
//     reports unknown layers through errors: hostile traffic would allocate per packet.
//   - Scope. We need a dozen fields from four headers; reading them straight from the buffer
//     is a few dozen lines per layer, easy to audit against the RFCs, and several times faster.
//
// Every read is bounds-checked against the captured bytes; lengths claimed by headers are
// checked against each other before use, so arbitrary input can not panic (see FuzzDecode).

// Link types we decode, as LINKTYPE_ values stored in pcap and pcapng files.
const (
	linkNull     = 0   // BSD loopback, AF value in the writer's byte order
	linkEthernet = 1   // Ethernet, with 802.1Q / 802.1ad (QinQ) tags
	linkRaw12    = 12  // raw IP as DLT_RAW appears in files from most platforms
	linkRaw14    = 14  // raw IP as DLT_RAW appears in files from OpenBSD
	linkRaw      = 101 // LINKTYPE_RAW: raw IPv4 or IPv6
	linkLoop     = 108 // OpenBSD loopback, AF value in network byte order
	linkSLL      = 113 // Linux cooked capture v1
	linkIPv4     = 228 // raw IPv4
	linkIPv6     = 229 // raw IPv6
	linkSLL2     = 276 // Linux cooked capture v2
)

// linkSupported reports whether packets of this link type can be decoded.
func linkSupported(link uint16) bool {
	switch link {
	case linkNull, linkEthernet, linkRaw12, linkRaw14, linkRaw, linkLoop, linkSLL, linkIPv4, linkIPv6, linkSLL2:
		return true
	}
	return false
}

// linkName names a link type the way tcpdump and libpcap do, for messages.
func linkName(link uint16) string {
	switch link {
	case linkNull:
		return "NULL"
	case linkEthernet:
		return "EN10MB"
	case linkRaw12, linkRaw14, linkRaw:
		return "RAW"
	case linkLoop:
		return "LOOP"
	case linkSLL:
		return "LINUX_SLL"
	case linkIPv4:
		return "IPV4"
	case linkIPv6:
		return "IPV6"
	case linkSLL2:
		return "LINUX_SLL2"
	case 105:
		return "IEEE802_11"
	case 127:
		return "IEEE802_11_RADIO"
	case 9:
		return "PPP"
	case 50:
		return "PPP_HDLC"
	case 104:
		return "C_HDLC"
	case 220:
		return "USB_LINUX_MMAPPED"
	case 239:
		return "NFLOG"
	}
	return "unknown"
}

// EtherTypes we follow.
const (
	etherIPv4      = 0x0800
	etherIPv6      = 0x86dd
	etherVLAN      = 0x8100 // 802.1Q
	etherQinQ      = 0x88a8 // 802.1ad service tag
	etherQinQ91    = 0x9100 // pre-standard QinQ tag, still emitted by some switches
	etherQinQ92    = 0x9200
	etherMPLS      = 0x8847
	etherMPLSMulti = 0x8848
	etherPPPoE     = 0x8864 // PPPoE session stage
	etherTEB       = 0x6558 // transparent Ethernet bridging (Ethernet inside GRE, Geneve)
	etherERSPAN2   = 0x88be
	etherERSPAN3   = 0x22eb
)

// IP protocol numbers and IPv6 extension headers.
const (
	protoHopByHop = 0
	protoIPIP     = 4
	protoTCP      = 6
	protoUDP      = 17
	protoIPv6     = 41
	protoGRE      = 47
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoDstOpts  = 60
	protoMobility = 135
	protoHIP      = 139
	protoShim6    = 140
)

// verdict is what the decoder made of one frame.
type verdict uint8

const (
	notTCP       verdict = iota // not TCP, or not decodable (bad or missing headers)
	isTCP                       // a Segment was filled
	isFragment                  // a non-first fragment of a TCP datagram: no TCP header in it
	truncatedTCP                // TCP, but the snaplen cut even the fixed 20-byte header
)

// decoder turns one captured frame into a Segment. It holds no per-packet state: the zero
// value with verifyChecksums set as wanted is ready to use, and decode never allocates.
type decoder struct {
	verifyChecksums bool
	// noDecap: do not look inside IP tunnels (IP-in-IP, GRE, VXLAN, Geneve, Teredo, GTP-U);
	// link-level framing (VLAN, MPLS, PPPoE) is always decoded.
	noDecap bool
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }

// decode fills seg from frame (the captured bytes, link-layer header first) and reports what it
// was. wireLen is the frame's length on the wire; it only matters when an IP header leaves its
// length to the NIC (TSO). On any verdict but isTCP, seg holds no meaningful value. decode sets
// every Segment field except Time, File, Packet and Offset, which belong to the reader.
func (d *decoder) decode(link uint16, frame []byte, wireLen int, seg *Segment) verdict {
	*seg = Segment{}
	complete := len(frame) >= wireLen
	b := frame
	switch link {
	case linkEthernet:
		return d.ethernet(b, complete, 0, seg)
	case linkSLL:
		// packet type(2) ARPHRD(2) address length(2) address(8) protocol(2). The address length
		// may claim more than 8 bytes (gopacket_linux_sll_oversized_addr.pcapng): the field is
		// still 8 bytes wide, so the claim is ignored, as libpcap does.
		if len(b) < 16 {
			return notTCP
		}
		return d.ethertype(be16(b[14:]), b[16:], complete, 0, seg)
	case linkSLL2:
		// protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) address length(1) address(8)
		if len(b) < 20 {
			return notTCP
		}
		return d.ethertype(be16(b[0:]), b[20:], complete, 0, seg)
	case linkRaw, linkRaw12, linkRaw14:
		return d.ip(b, complete, 0, seg)
	case linkIPv4:
		return d.ipv4(b, complete, 0, seg)
	case linkIPv6:
		return d.ipv6(b, complete, 0, seg)
	case linkNull, linkLoop:
		if len(b) < 4 {
			return notTCP
		}
		fam, ok := loopbackFamily(b)
		if !ok {
			return notTCP
		}
		b = b[4:]
		switch fam {
		case 4:
			return d.ipv4(b, complete, 0, seg)
		case 6:
			return d.ipv6(b, complete, 0, seg)
		}
	}
	return notTCP
}

// ethernet decodes an Ethernet II frame (no FCS).
func (d *decoder) ethernet(b []byte, complete bool, depth int, seg *Segment) verdict {
	if len(b) < 14 {
		return notTCP
	}
	return d.ethertype(be16(b[12:]), b[14:], complete, depth, seg)
}

// ethertype decodes what follows an EtherType: VLAN tags, MPLS labels and PPPoE on the way to
// IP. Each step consumes bytes, so the loop ends.
func (d *decoder) ethertype(etype uint16, b []byte, complete bool, depth int, seg *Segment) verdict {
	for {
		switch etype {
		case etherIPv4:
			return d.ipv4(b, complete, depth, seg)
		case etherIPv6:
			return d.ipv6(b, complete, depth, seg)
		case etherVLAN, etherQinQ, etherQinQ91, etherQinQ92:
			if len(b) < 4 {
				return notTCP
			}
			etype = be16(b[2:])
			b = b[4:]
		case etherMPLS, etherMPLSMulti:
			return d.mpls(b, complete, depth, seg)
		case etherPPPoE:
			return d.pppoe(b, complete, depth, seg)
		default:
			return notTCP
		}
	}
}

// loopbackFamily reads the 4-byte address-family header of DLT_NULL / DLT_LOOP in either byte
// order (DLT_NULL is in the writer's host order, and files travel between machines) and returns
// the IP version it announces. AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD, OpenBSD, BSD/OS),
// 28 (FreeBSD, DragonFly), 30 (macOS, iOS), 23 (Windows, as written by Npcap's loopback
// adapter) and 10 (Linux).
func loopbackFamily(h []byte) (version int, ok bool) {
	af := binary.LittleEndian.Uint32(h)
	if af > 0xffff {
		af = binary.BigEndian.Uint32(h)
	}
	switch af {
	case 2:
		return 4, true
	case 10, 23, 24, 28, 30:
		return 6, true
	}
	return 0, false
}

// ip decodes a raw IP packet of either version, by its version nibble.
func (d *decoder) ip(b []byte, complete bool, depth int, seg *Segment) verdict {
	if len(b) < 1 {
		return notTCP
	}
	switch b[0] >> 4 {
	case 4:
		return d.ipv4(b, complete, depth, seg)
	case 6:
		return d.ipv6(b, complete, depth, seg)
	}
	return notTCP
}

// ipv4 decodes an IPv4 header. complete says whether the frame was captured whole; depth is
// the number of tunnel headers already decoded.
func (d *decoder) ipv4(b []byte, complete bool, depth int, seg *Segment) verdict {
	if len(b) < 20 || b[0]>>4 != 4 {
		return notTCP
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl {
		return notTCP
	}
	total := int(be16(b[2:]))
	if total == 0 && complete {
		// A sender capturing its own TSO/GSO super-segments may see the length left at 0
		// for the NIC to fill in (Windows, some drivers): the captured bytes are the datagram.
		total = len(b)
	}
	if total < ihl {
		return notTCP
	}
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	frag := be16(b[6:])
	if b[9] != protoTCP {
		if frag&0x1fff != 0 {
			return notTCP // a non-first fragment: no header to look into
		}
		// A first fragment still holds the tunnel and inner headers, and inner lengths come
		// from the inner IP header: decoding it loses nothing we need.
		return d.tunnel(b[9], src, dst, b[ihl:min(len(b), total)], depth, seg)
	}
	if frag&0x1fff != 0 {
		// Non-first fragment: it carries TCP payload but no TCP header.
		return isFragment
	}
	seg.IPLen = uint32(total)
	seg.TTL, seg.IPID, seg.DF = b[8], be16(b[4:]), frag&0x4000 != 0

	// Checksums are verified only on a datagram captured whole, and the TCP one not on a first
	// fragment (more fragments set): it covers bytes this packet does not hold.
	whole := len(b) >= total
	var pseudo uint64
	if d.verifyChecksums && whole {
		if fold(sum32(b[:ihl], 0)) != 0xffff {
			seg.BadChecksum = true
		}
		if frag&0x2000 == 0 {
			pseudo = sum32(b[12:20], uint64(protoTCP)+uint64(total-ihl))
		}
	}
	end := min(len(b), total)
	return d.tcp(b[ihl:end], total-ihl, src, dst, pseudo, seg)
}

// ipv6 decodes an IPv6 header and skips extension headers up to TCP.
func (d *decoder) ipv6(b []byte, complete bool, depth int, seg *Segment) verdict {
	if len(b) < 40 || b[0]>>4 != 6 {
		return notTCP
	}
	plen := int(be16(b[4:]))
	next := b[6]
	off := 40
	jumbo := plen == 0
	routed := false     // a routing header: the pseudo-header holds a destination not shown here
	fragmented := false // a first fragment: the rest of the datagram is in other packets
	// Each extension header is at least 8 bytes, so the loop ends.
	for next != protoTCP {
		if len(b) < off+8 {
			// The chain is cut by the snaplen (or bogus): we cannot reach TCP.
			return notTCP
		}
		switch next {
		case protoHopByHop, protoRouting, protoDstOpts, protoMobility, protoHIP, protoShim6:
			hl := (int(b[off+1]) + 1) * 8
			if len(b) < off+hl {
				return notTCP
			}
			if next == protoRouting {
				routed = true
			}
			if next == protoHopByHop && jumbo && off == 40 {
				if n, ok := jumboLength(b[off+2 : off+hl]); ok {
					plen = n
					jumbo = false
				}
			}
			next = b[off]
			off += hl
		case protoFragment:
			if be16(b[off+2:])>>3 != 0 {
				if b[off] == protoTCP {
					return isFragment
				}
				return notTCP
			}
			// First fragment: the TCP header follows.
			if b[off+3]&1 != 0 {
				fragmented = true
			}
			next = b[off]
			off += 8
		case protoAH:
			hl := (int(b[off+1]) + 2) * 4
			if len(b) < off+hl {
				return notTCP
			}
			next = b[off]
			off += hl
		case protoIPIP, protoIPv6, protoGRE, protoUDP:
			if jumbo {
				return notTCP
			}
			total := plen + 40
			if off > total {
				return notTCP
			}
			src := netip.AddrFrom16([16]byte(b[8:24]))
			dst := netip.AddrFrom16([16]byte(b[24:40]))
			return d.tunnel(next, src, dst, b[off:min(len(b), total)], depth, seg)
		default:
			// No next header (59), ESP (50), or anything not TCP.
			return notTCP
		}
	}
	if jumbo {
		// Payload length 0 without a jumbo option: a sender-side capture of a GSO super-segment
		// whose length the stack left to the NIC. The captured bytes are the datagram, if whole.
		if !complete {
			return notTCP
		}
		plen = len(b) - 40
	}
	total := plen + 40
	if off > total {
		return notTCP
	}
	seg.IPLen = uint32(total)
	seg.TTL, seg.FlowLabel = b[7], be32(b)&0xfffff
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	whole := len(b) >= total
	var pseudo uint64
	if d.verifyChecksums && whole && !routed && !fragmented {
		pseudo = sum32(b[8:40], uint64(protoTCP)+uint64(total-off))
	}
	end := min(len(b), total)
	return d.tcp(b[off:end], total-off, src, dst, pseudo, seg)
}

// jumboLength finds the Jumbo Payload option (RFC 2675) in hop-by-hop options.
func jumboLength(opts []byte) (int, bool) {
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 { // Pad1
			i++
			continue
		}
		if i+1 >= len(opts) {
			return 0, false
		}
		l := int(opts[i+1])
		if i+2+l > len(opts) {
			return 0, false
		}
		if t == 0xc2 && l == 4 {
			n := be32(opts[i+2:])
			if n <= 65535 || n > 1<<30 {
				return 0, false
			}
			return int(n), true
		}
		i += 2 + l
	}
	return 0, false
}

// tcp decodes the TCP header. b holds the captured part of the segment (at most tcpLen bytes);
// tcpLen is the segment length the IP header claims. pseudo is the pseudo-header sum when the
// TCP checksum is to be verified (never 0 then, as it includes the protocol number), else 0.
func (d *decoder) tcp(b []byte, tcpLen int, src, dst netip.Addr, pseudo uint64, seg *Segment) verdict {
	if tcpLen < 20 {
		return notTCP
	}
	if len(b) < 20 {
		return truncatedTCP
	}
	doff := int(b[12]>>4) * 4
	if doff < 20 || doff > tcpLen {
		return notTCP
	}
	seg.Src = netip.AddrPortFrom(src, be16(b[0:]))
	seg.Dst = netip.AddrPortFrom(dst, be16(b[2:]))
	seg.Seq = Seq(be32(b[4:]))
	seg.Ack = Seq(be32(b[8:]))
	seg.Flags = Flags(b[13])
	seg.Window = be16(b[14:])
	seg.PayloadLen = uint32(tcpLen - doff)
	opts := b[20:]
	if len(b) < doff {
		seg.Truncated = true
	} else {
		opts = b[20:doff]
	}
	parseOptions(opts, &seg.Opts)
	if pseudo != 0 && len(b) >= tcpLen {
		if fold(sum32(b[:tcpLen], pseudo)) != 0xffff {
			seg.BadChecksum = true
		}
	}
	return isTCP
}

// TCP option kinds.
const (
	optEOL       = 0
	optNOP       = 1
	optMSS       = 2
	optWScale    = 3
	optSACKPerm  = 4
	optSACK      = 5
	optTimestamp = 8
	optFastOpen  = 34
	optExp       = 254 // RFC 6994 experimental, with a 16-bit ExID
	tfoExID      = 0xf989
)

// parseOptions reads the TCP options in o (which may be cut short by the snaplen). An option is
// taken only when it is complete and has the length Linux's tcp_parse_options insists on; a
// malformed or cut option ends the parse, keeping what came before it.
func parseOptions(o []byte, opts *Options) {
	if len(o) == 12 && be32(o) == 0x0101080a {
		// NOP, NOP, timestamps: what Linux puts on every segment but the SYNs. What the
		// walk makes of it, without the walk.
		opts.Has |= HasTimestamps
		opts.TSVal, opts.TSEcr = be32(o[4:]), be32(o[8:])
		opts.Layout = 0x080101
		return
	}
	walkOptions(o, opts)
}

// walkOptions is parseOptions, one option after the other.
func walkOptions(o []byte, opts *Options) {
	n := 0 // option kinds written to Layout
	for i := 0; i < len(o); {
		kind := o[i]
		if n < 8 {
			k := kind
			if k == optEOL {
				k = layoutEOL
			}
			opts.Layout |= OptionLayout(k) << (8 * n)
			n++
		}
		switch kind {
		case optEOL:
			return
		case optNOP:
			i++
			continue
		}
		if i+1 >= len(o) {
			return
		}
		l := int(o[i+1])
		if l < 2 || i+l > len(o) {
			return
		}
		v := o[i+2 : i+l]
		switch kind {
		case optMSS:
			if l == 4 {
				opts.Has |= HasMSS
				opts.MSS = be16(v)
			}
		case optWScale:
			if l == 3 {
				opts.Has |= HasWScale
				opts.WScale = v[0]
			}
		case optSACKPerm:
			if l == 2 {
				opts.Has |= HasSACKPerm
			}
		case optSACK:
			if l >= 10 && (l-2)%8 == 0 {
				opts.Has |= HasSACK
			}
		case optTimestamp:
			if l == 10 {
				opts.Has |= HasTimestamps
				opts.TSVal = be32(v)
				opts.TSEcr = be32(v[4:])
			}
		case optFastOpen:
			opts.FastOpen = true
		case optExp:
			if l >= 4 && be16(v) == tfoExID {
				opts.FastOpen = true
			}
		}
		i += l
	}
}

// nativeBigEndian reports the byte order of this machine (libpcap compiles DLT_NULL filters
// for it).
func nativeBigEndian() bool {
	b := [2]byte{0, 1}
	return binary.NativeEndian.Uint16(b[:]) == 1
}
