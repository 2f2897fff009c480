package capture

import "net/netip"

// Encapsulations. A TCP segment inside a tunnel is delivered with the inner addresses, the
// inner IP length, and the outermost tunnel recorded in Segment.Tunnel*: as Zeek does, the
// connection is the inner one. Tunnels are recognised the way Zeek recognises them by default:
// IP-in-IP, GRE (with ERSPAN), VXLAN and Geneve by their UDP ports, Teredo and GTP-U by their
// UDP ports on either side, MPLS and PPPoE by EtherType.

// maxTunnelDepth bounds nesting: deeper packets are not decoded (Zeek's Tunnel::max_depth is
// 2). It also bounds the decoder's recursion on crafted packets.
const maxTunnelDepth = 3

// UDP ports of tunnel protocols.
const (
	portTeredo = 3544
	portGTPU   = 2152
	portVXLAN  = 4789
	portGeneve = 6081
)

// enter records the outermost tunnel and reports whether another level may be decoded.
func enter(seg *Segment, kind TunnelKind, src, dst netip.Addr, id uint32, depth int) bool {
	if depth >= maxTunnelDepth {
		return false
	}
	if seg.Tunnel == TunnelNone {
		seg.Tunnel = kind
		seg.TunnelSrc = src
		seg.TunnelDst = dst
		seg.TunnelVNI = id
	}
	return true
}

// tunnel decodes the payload of an IP datagram that is not TCP, looking for an encapsulated
// TCP segment. b is the IP payload as captured.
func (d *decoder) tunnel(proto uint8, src, dst netip.Addr, b []byte, depth int, seg *Segment) verdict {
	if d.noDecap {
		return notTCP
	}
	switch proto {
	case protoIPIP:
		if !enter(seg, TunnelIPIP, src, dst, 0, depth) {
			return notTCP
		}
		return d.ipv4(b, false, depth+1, seg)
	case protoIPv6:
		if !enter(seg, TunnelIPIP, src, dst, 0, depth) {
			return notTCP
		}
		return d.ipv6(b, false, depth+1, seg)
	case protoGRE:
		return d.gre(src, dst, b, depth, seg)
	case protoUDP:
		return d.udp(src, dst, b, depth, seg)
	}
	return notTCP
}

// gre decodes GRE version 0 (RFC 2784/2890) carrying IP, Ethernet or ERSPAN.
func (d *decoder) gre(src, dst netip.Addr, b []byte, depth int, seg *Segment) verdict {
	if len(b) < 4 {
		return notTCP
	}
	flags := be16(b)
	if flags&0x7 != 0 || flags&0x4000 != 0 {
		// Version 1 is PPTP's enhanced GRE, carrying PPP; the routing bit (RFC 1701) adds
		// variable-length fields nobody sends any more.
		return notTCP
	}
	proto := be16(b[2:])
	off := 4
	if flags&0x8000 != 0 { // checksum present
		off += 4
	}
	var key uint32
	if flags&0x2000 != 0 { // key present
		if len(b) < off+4 {
			return notTCP
		}
		key = be32(b[off:])
		off += 4
	}
	if flags&0x1000 != 0 { // sequence number present
		off += 4
	}
	if len(b) < off {
		return notTCP
	}
	b = b[off:]
	switch proto {
	case etherERSPAN2:
		// An 8-byte ERSPAN type II header, then the mirrored Ethernet frame.
		if len(b) < 8 {
			return notTCP
		}
		b = b[8:]
		proto = etherTEB
	case etherERSPAN3:
		// A 12-byte ERSPAN type III header, 8 more with the O bit (platform subheader).
		if len(b) < 12 {
			return notTCP
		}
		o := b[11]&1 != 0
		b = b[12:]
		if o {
			if len(b) < 8 {
				return notTCP
			}
			b = b[8:]
		}
		proto = etherTEB
	}
	if !enter(seg, TunnelGRE, src, dst, key, depth) {
		return notTCP
	}
	if proto == etherTEB {
		return d.ethernet(b, false, depth+1, seg)
	}
	return d.ethertype(proto, b, false, depth+1, seg)
}

// udp looks for a tunnel in a UDP datagram, by port.
func (d *decoder) udp(src, dst netip.Addr, b []byte, depth int, seg *Segment) verdict {
	if len(b) < 8 {
		return notTCP
	}
	sport, dport := be16(b), be16(b[2:])
	if ulen := int(be16(b[4:])); ulen >= 8 && ulen < len(b) {
		b = b[:ulen]
	}
	b = b[8:]
	switch {
	case dport == portVXLAN:
		// flags(1, I bit 0x08) reserved(3) VNI(3) reserved(1), then Ethernet.
		if len(b) < 8 || b[0]&0x08 == 0 {
			return notTCP
		}
		if !enter(seg, TunnelVXLAN, src, dst, be32(b[4:])>>8, depth) {
			return notTCP
		}
		return d.ethernet(b[8:], false, depth+1, seg)
	case dport == portGeneve:
		// version(2 bits) option length(6 bits, in 4-byte words) flags(1) protocol(2) VNI(3) reserved(1)
		if len(b) < 8 || b[0]>>6 != 0 {
			return notTCP
		}
		hl := 8 + int(b[0]&0x3f)*4
		if len(b) < hl {
			return notTCP
		}
		if !enter(seg, TunnelGeneve, src, dst, be32(b[4:])>>8, depth) {
			return notTCP
		}
		proto := be16(b[2:])
		if proto == etherTEB {
			return d.ethernet(b[hl:], false, depth+1, seg)
		}
		return d.ethertype(proto, b[hl:], false, depth+1, seg)
	case sport == portGTPU || dport == portGTPU:
		return d.gtpu(src, dst, b, depth, seg)
	case sport == portTeredo || dport == portTeredo || looksTeredo(b):
		return d.teredo(src, dst, b, depth, seg)
	}
	return notTCP
}

// looksTeredo tells Teredo on ports other than 3544 (a relay picks its own, and clients talk to
// it from theirs) the way Wireshark's heuristic and Zeek's analyzer do: the payload must be an
// IPv6 packet whose length fills the datagram exactly, to or from a Teredo (2001:0::/32)
// address. The checks are strict enough that other UDP traffic does not pass them.
func looksTeredo(b []byte) bool {
	if len(b) >= 8 && b[0] == 0 && b[1] == 0 {
		b = b[8:] // origin indication
	}
	if len(b) < 40 || b[0]>>4 != 6 || int(be16(b[4:]))+40 != len(b) {
		return false
	}
	teredo := func(a []byte) bool { return a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0 }
	return teredo(b[8:24]) || teredo(b[24:40])
}

// gtpu decodes a GTPv1-U T-PDU (3GPP TS 29.281): a user's IP packet.
func (d *decoder) gtpu(src, dst netip.Addr, b []byte, depth int, seg *Segment) verdict {
	if len(b) < 8 || b[0]>>5 != 1 || b[0]&0x10 == 0 || b[1] != 0xff {
		return notTCP // not version 1, not GTP (PT=0 is GTP'), or not a T-PDU
	}
	teid := be32(b[4:])
	off := 8
	if b[0]&0x07 != 0 {
		// Sequence number, N-PDU number and next extension header type follow, then the
		// extension headers, each a length in 4-byte words, contents, and the next type.
		if len(b) < 12 {
			return notTCP
		}
		next := b[11]
		off = 12
		for next != 0 {
			if len(b) < off+1 {
				return notTCP
			}
			l := int(b[off]) * 4
			if l == 0 || len(b) < off+l {
				return notTCP
			}
			next = b[off+l-1]
			off += l
		}
	}
	if !enter(seg, TunnelGTPU, src, dst, teid, depth) {
		return notTCP
	}
	return d.ip(b[off:], false, depth+1, seg)
}

// teredo decodes IPv6 carried in UDP (RFC 4380), after its optional authentication and origin
// indication headers.
func (d *decoder) teredo(src, dst netip.Addr, b []byte, depth int, seg *Segment) verdict {
	if len(b) >= 4 && b[0] == 0 && b[1] == 1 {
		// Authentication: indicator(2) id-len(1) au-len(1) id au nonce(8) confirmation(1).
		n := 4 + int(b[2]) + int(b[3]) + 9
		if len(b) < n {
			return notTCP
		}
		b = b[n:]
	}
	if len(b) >= 8 && b[0] == 0 && b[1] == 0 {
		b = b[8:] // origin indication
	}
	if len(b) < 40 || b[0]>>4 != 6 {
		return notTCP
	}
	if !enter(seg, TunnelTeredo, src, dst, 0, depth) {
		return notTCP
	}
	return d.ipv6(b, false, depth+1, seg)
}

// mpls decodes an MPLS label stack (RFC 3032) and the IP packet under it; the outermost label
// is recorded as the tunnel identifier.
func (d *decoder) mpls(b []byte, complete bool, depth int, seg *Segment) verdict {
	first := true
	for {
		if len(b) < 4 {
			return notTCP
		}
		label := be32(b)
		b = b[4:]
		if first {
			if !enter(seg, TunnelMPLS, netip.Addr{}, netip.Addr{}, label>>12, depth) {
				return notTCP
			}
			first = false
		}
		if label&0x100 != 0 { // bottom of stack
			break
		}
	}
	// Nothing says what is under the stack; IP is told by its version nibble. (A pseudowire
	// control word starts with 0 and is not decoded.)
	return d.ip(b, complete, depth+1, seg)
}

// pppoe decodes a PPPoE session frame (RFC 2516) carrying IP.
func (d *decoder) pppoe(b []byte, complete bool, depth int, seg *Segment) verdict {
	// version/type(1) code(1) session(2) length(2), then the PPP protocol(2).
	if len(b) < 8 || b[0] != 0x11 || b[1] != 0 {
		return notTCP
	}
	switch be16(b[6:]) {
	case 0x0021:
		return d.ipv4(b[8:], complete, depth, seg)
	case 0x0057:
		return d.ipv6(b[8:], complete, depth, seg)
	}
	return notTCP
}
