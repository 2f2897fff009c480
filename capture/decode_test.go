package capture

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Hand-built packets, for what the corpus does not hold: IPv6 extension headers, fragments,
// bogus lengths, every option, every link type and tunnel. gopacket serializes the layers it
// can (with correct lengths and checksums); the rest is spliced in by hand.

var (
	cliV4 = netip.MustParseAddr("192.0.2.1")
	srvV4 = netip.MustParseAddr("198.51.100.7")
	cliV6 = netip.MustParseAddr("2001:db8::1")
	srvV6 = netip.MustParseAddr("2001:db8::2")
)

// tcpLayer is a SYN with every option we parse, and 10 bytes of data.
func tcpLayer() *layers.TCP {
	return &layers.TCP{
		SrcPort: 51234, DstPort: 80, Seq: 1000, Ack: 0, SYN: true, ECE: true, Window: 64240,
		Options: []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}},
			{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2},
			{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: []byte{0, 0, 0x30, 0x39, 0, 0, 0, 7}},
			{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
			{OptionType: 34, OptionLength: 10, OptionData: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		},
	}
}

var payload10 = gopacket.Payload("0123456789")

func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

// ipv4Packet is an IPv4 datagram holding the TCP segment.
func ipv4Packet(t testing.TB) []byte {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: cliV4.AsSlice(), DstIP: srvV4.AsSlice(), Flags: layers.IPv4DontFragment}
	tcp := tcpLayer()
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, ip, tcp, payload10)
}

// ipv6TCP is the TCP segment (header and data) with its checksum computed for IPv6.
func ipv6TCP(t testing.TB) []byte {
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: net.IP(cliV6.AsSlice()), DstIP: net.IP(srvV6.AsSlice())}
	tcp := tcpLayer()
	tcp.SetNetworkLayerForChecksum(ip)
	return serialize(t, tcp, payload10)
}

// ipv6Packet builds an IPv6 header, extension headers ext (already chained, the last one's
// next header must be set by the caller) and upper-layer bytes.
func ipv6Packet(first uint8, ext, upper []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(ext)+len(upper)))
	h[6] = first
	h[7] = 64
	copy(h[8:], cliV6.AsSlice())
	copy(h[24:], srvV6.AsSlice())
	return append(append(h, ext...), upper...)
}

func ether(etype uint16, body []byte) []byte {
	h := make([]byte, 14)
	copy(h, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	binary.BigEndian.PutUint16(h[12:], etype)
	return append(h, body...)
}

// tcpFrame is an Ethernet frame with the IPv4 TCP SYN.
func tcpFrame(t testing.TB) []byte { return ether(etherIPv4, ipv4Packet(t)) }

func decodeOne(link uint16, frame []byte, wire int, verify bool) (Segment, verdict) {
	d := decoder{verifyChecksums: verify}
	var s Segment
	if wire < len(frame) {
		wire = len(frame)
	}
	v := d.decode(link, frame, wire, &s)
	return s, v
}

func checkSYN(t *testing.T, what string, s Segment, v verdict, src, dst netip.Addr) {
	t.Helper()
	if v != isTCP {
		t.Fatalf("%s: verdict %d, want TCP", what, v)
	}
	if s.Src != netip.AddrPortFrom(src, 51234) || s.Dst != netip.AddrPortFrom(dst, 80) {
		t.Errorf("%s: %v > %v", what, s.Src, s.Dst)
	}
	if s.Seq != 1000 || s.Flags != SYN|ECE || s.Window != 64240 || s.PayloadLen != 10 {
		t.Errorf("%s: seq %d flags %v win %d len %d", what, s.Seq, s.Flags, s.Window, s.PayloadLen)
	}
	want := Options{Has: HasMSS | HasSACKPerm | HasTimestamps | HasWScale, MSS: 1460, WScale: 7, TSVal: 12345, TSEcr: 7, FastOpen: true,
		Layout: 0x03_01_08_04_02 | 34<<40 | 0xff<<48}
	if s.Opts != want {
		t.Errorf("%s: options %+v, want %+v", what, s.Opts, want)
	}
	if s.Truncated || s.BadChecksum {
		t.Errorf("%s: truncated %v bad checksum %v", what, s.Truncated, s.BadChecksum)
	}
}

func TestDecodeIPv4(t *testing.T) {
	s, v := decodeOne(linkEthernet, tcpFrame(t), 0, true)
	checkSYN(t, "IPv4", s, v, cliV4, srvV4)
	if s.IPLen != 20+52+10 {
		t.Errorf("IPLen %d", s.IPLen)
	}
	// Ethernet padding after the datagram is not payload.
	s, v = decodeOne(linkEthernet, append(tcpFrame(t), 0, 0, 0, 0, 0, 0), 0, true)
	checkSYN(t, "padded", s, v, cliV4, srvV4)
}

func TestDecodeIPv6ExtensionHeaders(t *testing.T) {
	seg := ipv6TCP(t)
	hbh := []byte{protoDstOpts, 0, 1, 4, 0, 0, 0, 0}                          // hop-by-hop: PadN
	dst := []byte{protoRouting, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // 16 bytes
	rt := []byte{protoAH, 0, 0, 0, 0, 0, 0, 0}                                // routing, segments left 0
	ah := []byte{protoFragment, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0}  // AH: (2+2)*4 = 16
	fragFirst := []byte{protoTCP, 0, 0, 0, 0, 0, 0, 9}                        // offset 0, M=0
	ext := append(append(append(append(append([]byte{}, hbh...), dst...), rt...), ah...), fragFirst...)
	pkt := ipv6Packet(protoHopByHop, ext, seg)
	s, v := decodeOne(linkEthernet, ether(etherIPv6, pkt), 0, true)
	checkSYN(t, "IPv6 with hop-by-hop, dest opts, routing, AH, fragment", s, v, cliV6, srvV6)
	if s.IPLen != uint32(len(pkt)) {
		t.Errorf("IPLen %d, want %d", s.IPLen, len(pkt))
	}

	// Non-first fragment: no TCP header in it.
	frag := []byte{protoTCP, 0, 0x05, 0x00, 0, 0, 0, 9} // offset 160 bytes
	if _, v := decodeOne(linkIPv6, ipv6Packet(protoFragment, frag, seg[:16]), 0, false); v != isFragment {
		t.Errorf("non-first IPv6 fragment: verdict %d, want fragment", v)
	}
	// First fragment with more to come: TCP, lengths of this fragment.
	more := []byte{protoTCP, 0, 0, 1, 0, 0, 0, 9}
	if s, v := decodeOne(linkIPv6, ipv6Packet(protoFragment, more, seg[:56]), 0, true); v != isTCP || s.PayloadLen != 4 || s.BadChecksum {
		t.Errorf("first IPv6 fragment: verdict %d payload %d bad %v", v, s.PayloadLen, s.BadChecksum)
	}
	// ESP, no next header: not TCP.
	for _, nh := range []uint8{50, 59, protoUDP} {
		if _, v := decodeOne(linkIPv6, ipv6Packet(nh, nil, seg), 0, false); v != notTCP {
			t.Errorf("next header %d: verdict %d", nh, v)
		}
	}
	// The snaplen cuts the extension chain: not TCP, no panic, at every cut.
	frame := ether(etherIPv6, pkt)
	for n := 0; n < len(frame); n++ {
		s, v := decodeOne(linkEthernet, frame[:n], len(frame), false)
		hdrEnd := 14 + 40 + len(ext) + 20
		switch {
		case n < hdrEnd && v == isTCP:
			t.Fatalf("cut at %d: TCP without a whole fixed header", n)
		case n >= hdrEnd && (v != isTCP || s.PayloadLen != 10):
			t.Fatalf("cut at %d: verdict %d payload %d", n, v, s.PayloadLen)
		}
	}
}

func TestDecodeIPv4Fragments(t *testing.T) {
	pkt := ipv4Packet(t)
	setFrag := func(v uint16) []byte {
		b := append([]byte(nil), pkt...)
		binary.BigEndian.PutUint16(b[6:], v)
		binary.BigEndian.PutUint16(b[10:], 0)
		binary.BigEndian.PutUint16(b[10:], ^fold(sum32(b[:20], 0)))
		return b
	}
	// First fragment (more fragments, offset 0): the TCP header is there; its checksum covers
	// data in other fragments and is not verified.
	if s, v := decodeOne(linkRaw, setFrag(0x2000), 0, true); v != isTCP || s.BadChecksum || s.PayloadLen != 10 {
		t.Errorf("first fragment: verdict %d bad checksum %v payload %d", v, s.BadChecksum, s.PayloadLen)
	}
	if _, v := decodeOne(linkRaw, setFrag(0x0010), 0, false); v != isFragment {
		t.Errorf("non-first fragment: verdict %d, want fragment", v)
	}
}

// TestDecodeBogus: header lengths that contradict each other make a packet undecodable.
func TestDecodeBogus(t *testing.T) {
	good := ipv4Packet(t)
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	cases := map[string][]byte{
		"TCP data offset 4":             mod(func(b []byte) { b[20+12] = 4 << 4 }),
		"TCP data offset 0":             mod(func(b []byte) { b[20+12] = 0 }),
		"data offset past total":        mod(func(b []byte) { b[20+12] = 15 << 4; binary.BigEndian.PutUint16(b[2:], 20+40) }),
		"total length < IP header":      mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 12) }),
		"total length < headers":        mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 20+30) }),
		"total length < 20 + 20":        mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 24) }),
		"IHL 4":                         mod(func(b []byte) { b[0] = 0x44 }),
		"IHL beyond capture":            mod(func(b []byte) { b[0] = 0x4f })[:50],
		"version 6 in an IPv4 header":   mod(func(b []byte) { b[0] = 0x65 }),
		"not TCP":                       mod(func(b []byte) { b[9] = 1 }),
		"TCP header cut by the snaplen": good[:20+19],
	}
	for name, pkt := range cases {
		if _, v := decodeOne(linkIPv4, pkt, len(good), false); v == isTCP {
			t.Errorf("%s: decoded as TCP", name)
		}
	}
	if _, v := decodeOne(linkIPv4, good[:20+19], len(good), false); v != truncatedTCP {
		t.Errorf("TCP header cut: verdict %d, want truncatedTCP", v)
	}
	// Total length 0 on a whole frame: TSO seen on the sender; the captured bytes are the datagram.
	tso := mod(func(b []byte) { binary.BigEndian.PutUint16(b[2:], 0) })
	if s, v := decodeOne(linkIPv4, tso, len(tso), false); v != isTCP || s.PayloadLen != 10 {
		t.Errorf("TSO length 0: verdict %d payload %d", v, s.PayloadLen)
	}
	if _, v := decodeOne(linkIPv4, tso[:50], len(tso), false); v == isTCP {
		t.Errorf("TSO length 0 on a cut frame: decoded")
	}
}

// TestDecodeSnaplen cuts the frame at every length: payload lengths still come from the
// headers, options cut short leave the segment Truncated with what was complete.
func TestDecodeSnaplen(t *testing.T) {
	frame := tcpFrame(t)
	hdr := 14 + 20 + 20
	for n := 0; n <= len(frame); n++ {
		s, v := decodeOne(linkEthernet, frame[:n], len(frame), false)
		switch {
		case n < 14+20:
			if v != notTCP {
				t.Fatalf("cut at %d: verdict %d", n, v)
			}
		case n < hdr:
			if v != truncatedTCP {
				t.Fatalf("cut at %d: verdict %d, want truncatedTCP", n, v)
			}
		default:
			if v != isTCP || s.PayloadLen != 10 || s.IPLen != 82 || s.Seq != 1000 {
				t.Fatalf("cut at %d: verdict %d payload %d", n, v, s.PayloadLen)
			}
			if s.Truncated != (n < hdr+32) {
				t.Fatalf("cut at %d: Truncated %v", n, s.Truncated)
			}
		}
		// Options are MSS(4) SACKOK(2) TS(10) NOP WS(3) TFO(10), padded to 32 bytes: each
		// appears once complete.
		opt := n - hdr
		if v == isTCP {
			if (s.Opts.Has&HasMSS != 0) != (opt >= 4) || (s.Opts.Has&HasSACKPerm != 0) != (opt >= 6) ||
				(s.Opts.Has&HasTimestamps != 0) != (opt >= 16) || (s.Opts.Has&HasWScale != 0) != (opt >= 20) ||
				s.Opts.FastOpen != (opt >= 30) {
				t.Fatalf("cut at %d (%d option bytes): options %+v", n, opt, s.Opts)
			}
		}
	}
}

func TestParseOptions(t *testing.T) {
	cases := []struct {
		name string
		opts []byte
		want Options
	}{
		{"MSS", []byte{2, 4, 0x05, 0xb4}, Options{Has: HasMSS, MSS: 1460}},
		{"MSS with wrong length", []byte{2, 5, 0x05, 0xb4, 0}, Options{}},
		{"length 0 stops", []byte{2, 0, 0x05, 0xb4, 2, 4, 0, 1}, Options{}},
		{"length 1 stops", []byte{1, 8, 1}, Options{}},
		{"length past the end", []byte{2, 4, 0x05, 0xb4, 8, 10, 1, 2, 3}, Options{Has: HasMSS, MSS: 1460}},
		{"kind with no length byte", []byte{1, 1, 3}, Options{}},
		{"EOL ends", []byte{0, 2, 4, 0x05, 0xb4}, Options{}},
		{"window scale", []byte{3, 3, 14}, Options{Has: HasWScale, WScale: 14}},
		{"SACK", []byte{5, 10, 0, 0, 0, 1, 0, 0, 0, 2}, Options{Has: HasSACK}},
		{"SACK 3 blocks", append([]byte{5, 26}, make([]byte, 24)...), Options{Has: HasSACK}},
		{"SACK bad length", []byte{5, 9, 0, 0, 0, 1, 0, 0, 0}, Options{}},
		{"timestamps", []byte{1, 1, 8, 10, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, Options{Has: HasTimestamps, TSVal: 1, TSEcr: 0xffffffff}},
		{"TFO cookie request", []byte{34, 2}, Options{FastOpen: true}},
		{"TFO experimental", []byte{254, 4, 0xf9, 0x89}, Options{FastOpen: true}},
		{"experimental, other ExID", []byte{254, 4, 0x12, 0x34}, Options{}},
		{"unknown kind skipped", []byte{99, 3, 0, 2, 4, 0x05, 0xb4}, Options{Has: HasMSS, MSS: 1460}},
	}
	for _, c := range cases {
		var o Options
		parseOptions(c.opts, &o)
		o.Layout = 0 // TestOptionLayout checks it
		if o != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, o, c.want)
		}
	}
}

// TestDecodeLinkTypes wraps the same datagrams in every link layer and encapsulation.
func TestDecodeLinkTypes(t *testing.T) {
	v4 := ipv4Packet(t)
	v6 := ipv6Packet(protoTCP, nil, ipv6TCP(t))
	tag := func(tpid, inner uint16) []byte {
		b := make([]byte, 4)
		binary.BigEndian.PutUint16(b, 100)
		binary.BigEndian.PutUint16(b[2:], inner)
		return append(binary.BigEndian.AppendUint16(nil, tpid), b...)
	}
	ethWithTags := func(tags []byte, body []byte) []byte {
		h := ether(0, nil)[:12]
		return append(append(h, tags...), body...)
	}
	sll := func(proto uint16, body []byte) []byte {
		h := make([]byte, 16)
		binary.BigEndian.PutUint16(h[4:], 6)
		binary.BigEndian.PutUint16(h[14:], proto)
		return append(h, body...)
	}
	sll2 := func(proto uint16, body []byte) []byte {
		h := make([]byte, 20)
		binary.BigEndian.PutUint16(h, proto)
		return append(h, body...)
	}
	null := func(af uint32, order binary.AppendByteOrder, body []byte) []byte {
		return append(order.AppendUint32(nil, af), body...)
	}
	outer4 := func(proto uint8, body []byte) []byte {
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(body)))
		ip[8] = 64
		ip[9] = proto
		copy(ip[12:], []byte{10, 0, 0, 1})
		copy(ip[16:], []byte{10, 0, 0, 2})
		return append(ip, body...)
	}
	udp := func(sport, dport uint16, body []byte) []byte {
		h := make([]byte, 8)
		binary.BigEndian.PutUint16(h, sport)
		binary.BigEndian.PutUint16(h[2:], dport)
		binary.BigEndian.PutUint16(h[4:], uint16(8+len(body)))
		return append(h, body...)
	}
	mpls := func(body []byte) []byte {
		return append([]byte{0, 0x01, 0x40, 64, 0, 0x02, 0x01, 64}, body...) // labels 20 and 32 (bottom)
	}
	tunnelEnds := [2]netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	cases := []struct {
		name   string
		link   uint16
		frame  []byte
		v6     bool
		tunnel TunnelKind
		id     uint32
	}{
		{"Ethernet IPv6", linkEthernet, ether(etherIPv6, v6), true, 0, 0},
		{"802.1Q", linkEthernet, ethWithTags(tag(etherVLAN, etherIPv4), v4), false, 0, 0},
		{"QinQ 802.1ad", linkEthernet, ethWithTags(append(tag(etherQinQ, etherVLAN), tag(etherVLAN, etherIPv6)[2:]...), v6), true, 0, 0},
		{"QinQ 0x9100", linkEthernet, ethWithTags(append(tag(etherQinQ91, etherVLAN), tag(etherVLAN, etherIPv4)[2:]...), v4), false, 0, 0},
		{"SLL", linkSLL, sll(etherIPv4, v4), false, 0, 0},
		{"SLL IPv6", linkSLL, sll(etherIPv6, v6), true, 0, 0},
		{"SLL2", linkSLL2, sll2(etherIPv6, v6), true, 0, 0},
		{"RAW 101 IPv4", linkRaw, v4, false, 0, 0},
		{"RAW 101 IPv6", linkRaw, v6, true, 0, 0},
		{"RAW 12", linkRaw12, v4, false, 0, 0},
		{"RAW 14", linkRaw14, v6, true, 0, 0},
		{"IPV4 228", linkIPv4, v4, false, 0, 0},
		{"IPV6 229", linkIPv6, v6, true, 0, 0},
		{"NULL AF_INET LE", linkNull, null(2, binary.LittleEndian, v4), false, 0, 0},
		{"NULL AF_INET BE", linkNull, null(2, binary.BigEndian, v4), false, 0, 0},
		{"NULL AF_INET6 NetBSD/OpenBSD 24", linkNull, null(24, binary.LittleEndian, v6), true, 0, 0},
		{"NULL AF_INET6 FreeBSD 28", linkNull, null(28, binary.BigEndian, v6), true, 0, 0},
		{"NULL AF_INET6 macOS 30", linkNull, null(30, binary.LittleEndian, v6), true, 0, 0},
		{"NULL AF_INET6 Windows 23", linkNull, null(23, binary.LittleEndian, v6), true, 0, 0},
		{"LOOP AF_INET", linkLoop, null(2, binary.BigEndian, v4), false, 0, 0},
		{"LOOP AF_INET6 24", linkLoop, null(24, binary.BigEndian, v6), true, 0, 0},
		{"PPPoE", linkEthernet, ether(etherPPPoE, append([]byte{0x11, 0, 0, 1, 0, 0, 0, 0x21}, v4...)), false, 0, 0},
		{"MPLS", linkEthernet, ether(etherMPLS, mpls(v4)), false, TunnelMPLS, 20},
		{"MPLS IPv6", linkEthernet, ether(etherMPLS, mpls(v6)), true, TunnelMPLS, 20},
		{"IP-in-IP", linkRaw, outer4(protoIPIP, v4), false, TunnelIPIP, 0},
		{"6in4", linkRaw, outer4(protoIPv6, v6), true, TunnelIPIP, 0},
		{"GRE IPv4 with key", linkRaw, outer4(protoGRE, append([]byte{0x20, 0, 0x08, 0, 0, 0, 0, 42}, v4...)), false, TunnelGRE, 42},
		{"GRE Ethernet", linkRaw, outer4(protoGRE, append([]byte{0, 0, 0x65, 0x58}, ether(etherIPv6, v6)...)), true, TunnelGRE, 0},
		{"GRE ERSPAN II", linkRaw, outer4(protoGRE, append(append([]byte{0x10, 0, 0x88, 0xbe, 0, 0, 0, 1}, make([]byte, 8)...), ether(etherIPv4, v4)...)), false, TunnelGRE, 0},
		{"VXLAN", linkRaw, outer4(protoUDP, udp(40000, portVXLAN, append([]byte{8, 0, 0, 0, 0, 0x12, 0x34, 0}, ether(etherIPv4, v4)...))), false, TunnelVXLAN, 0x1234},
		{"Geneve", linkRaw, outer4(protoUDP, udp(40000, portGeneve, append([]byte{1, 0, 0x65, 0x58, 0, 0, 7, 0, 1, 2, 3, 4}, ether(etherIPv4, v4)...))), false, TunnelGeneve, 7},
		{"GTP-U", linkRaw, outer4(protoUDP, udp(portGTPU, portGTPU, append([]byte{0x30, 0xff, 0, byte(len(v4)), 0, 0, 0, 99}, v4...))), false, TunnelGTPU, 99},
		{"GTP-U with extension header", linkRaw, outer4(protoUDP, udp(5906, portGTPU, append([]byte{0x34, 0xff, 0, 0, 0, 0, 0, 99, 0, 0, 0, 0x85, 1, 0x10, 0, 0}, v6...))), true, TunnelGTPU, 99},
		{"Teredo", linkRaw, outer4(protoUDP, udp(portTeredo, 50000, v6)), true, TunnelTeredo, 0},
	}
	for _, c := range cases {
		s, v := decodeOne(c.link, c.frame, 0, true)
		if c.v6 {
			checkSYN(t, c.name, s, v, cliV6, srvV6)
		} else {
			checkSYN(t, c.name, s, v, cliV4, srvV4)
		}
		if s.Tunnel != c.tunnel || s.TunnelVNI != c.id {
			t.Errorf("%s: tunnel %d id %d, want %d %d", c.name, s.Tunnel, s.TunnelVNI, c.tunnel, c.id)
		}
		if c.tunnel != TunnelNone && c.tunnel != TunnelMPLS && (s.TunnelSrc != tunnelEnds[0] || s.TunnelDst != tunnelEnds[1]) {
			t.Errorf("%s: tunnel endpoints %v %v", c.name, s.TunnelSrc, s.TunnelDst)
		}
	}
	// Unknown families, EtherTypes and link types are not TCP.
	for name, c := range map[string]struct {
		link  uint16
		frame []byte
	}{
		"NULL AF 99":          {linkNull, null(99, binary.LittleEndian, v4)},
		"ARP":                 {linkEthernet, ether(0x0806, v4)},
		"802.3 length field":  {linkEthernet, ether(100, v4)},
		"link type 105":       {105, v4},
		"UDP to another port": {linkRaw, outer4(protoUDP, udp(53, 53, v4))},
	} {
		if _, v := decodeOne(c.link, c.frame, 0, false); v != notTCP {
			t.Errorf("%s: verdict %d, want not TCP", name, v)
		}
	}
	// Nesting is bounded.
	deep := v4
	for i := 0; i < maxTunnelDepth+1; i++ {
		deep = outer4(protoIPIP, deep)
	}
	if _, v := decodeOne(linkRaw, deep, 0, false); v != notTCP {
		t.Errorf("%d nested tunnels decoded", maxTunnelDepth+1)
	}
}

func TestChecksums(t *testing.T) {
	frame := tcpFrame(t)
	if s, _ := decodeOne(linkEthernet, frame, 0, true); s.BadChecksum {
		t.Errorf("good packet flagged")
	}
	badTCP := append([]byte(nil), frame...)
	badTCP[14+20+16] ^= 0x40
	if s, _ := decodeOne(linkEthernet, badTCP, 0, true); !s.BadChecksum {
		t.Errorf("bad TCP checksum not flagged")
	}
	if s, _ := decodeOne(linkEthernet, badTCP, 0, false); s.BadChecksum {
		t.Errorf("flagged with verification off")
	}
	if s, _ := decodeOne(linkEthernet, badTCP[:60], len(badTCP), true); s.BadChecksum {
		t.Errorf("flagged on a packet not captured whole")
	}
	badIP := append([]byte(nil), frame...)
	badIP[14+10] ^= 0x01
	if s, _ := decodeOne(linkEthernet, badIP, 0, true); !s.BadChecksum {
		t.Errorf("bad IPv4 header checksum not flagged")
	}
	v6 := ether(etherIPv6, ipv6Packet(protoTCP, nil, ipv6TCP(t)))
	if s, _ := decodeOne(linkEthernet, v6, 0, true); s.BadChecksum {
		t.Errorf("good IPv6 packet flagged")
	}
	v6[len(v6)-1] ^= 0xff
	if s, _ := decodeOne(linkEthernet, v6, 0, true); !s.BadChecksum {
		t.Errorf("bad IPv6 TCP checksum not flagged")
	}
}

// TestChecksumsCorpus compares BadChecksum packet by packet with tshark's verdicts
// (tshark -o tcp.check_checksum:TRUE -Y 'tcp.checksum.status == 0' -T fields -e frame.number).
// tshark also calls bad the checksum of zeek_tcp_reassembly.pcap's packets 7, 26, 35, 39 and 85,
// whose IP total length (1500) is more than the frame holds (1494-1506 bytes with Ethernet):
// a checksum over bytes that are not there cannot be verified, and like Zeek we do not try.
func TestChecksumsCorpus(t *testing.T) {
	for name, bad := range map[string][]uint64{
		"zeek/chksums_localhost-bad-chksum.pcap": {1, 3, 4, 7, 8, 10},
		"public/gopacket_test300.pcapng":         {1, 3, 4, 6, 7, 9, 10, 12, 15, 16, 19, 20, 21, 22, 23, 25},
		"public/zeek_tcp_reassembly.pcap":        {9, 16, 20, 31, 64, 68, 79, 91, 97, 112},
		"zeek/tcp_syn-bad.pcap":                  {1},
		"public/zeek_ftp_ipv6.pcap":              nil,
	} {
		r := readAll(t, []string{corpusFile(t, name)}, Config{VerifyChecksums: true})
		var got []uint64
		for _, s := range r.segs {
			if s.BadChecksum {
				got = append(got, s.Packet)
			}
		}
		if len(got) != len(bad) {
			t.Errorf("%s: bad checksums in packets %v, want %v", name, got, bad)
			continue
		}
		for i := range got {
			if got[i] != bad[i] {
				t.Errorf("%s: bad checksums in packets %v, want %v", name, got, bad)
				break
			}
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	frames := [][]byte{tcpFrame(t), ether(etherIPv6, ipv6Packet(protoTCP, nil, ipv6TCP(t)))}
	d := decoder{verifyChecksums: true}
	var s Segment
	n := testing.AllocsPerRun(1000, func() {
		for _, f := range frames {
			d.decode(linkEthernet, f, len(f), &s)
		}
	})
	if n != 0 {
		t.Errorf("decode allocates %.1f times per run", n)
	}
	f, err := newFilter("tcp port 80")
	if err != nil {
		t.Fatal(err)
	}
	frame := frames[0]
	n = testing.AllocsPerRun(1000, func() { f.match(linkEthernet, frame, len(frame)) })
	if n != 0 {
		t.Errorf("filter allocates %.1f times per packet", n)
	}
}

func TestFlagsString(t *testing.T) {
	if s := (SYN | ACK).String(); s != "S." {
		t.Errorf("SYN|ACK = %q", s)
	}
}

// TestTimestampOptionsFastPath: the shortcut parseOptions takes for the options NOP, NOP,
// timestamps gives what the walk gives, on option blocks of 12 bytes that start that way or
// nearly (decoded through tcp, as packets are).
func TestTimestampOptionsFastPath(t *testing.T) {
	var d decoder
	r := uint64(5)
	for n := range 20000 {
		opts := make([]byte, 12)
		for i := range opts {
			r = r*6364136223846793005 + 1442695040888963407
			opts[i] = byte(r >> 56)
		}
		if n%2 == 0 {
			copy(opts, []byte{1, 1, 8, 10})
			if n%6 == 0 {
				opts[r>>40%4] ^= byte(1 << (r >> 32 % 8)) // one bit off the prefix
			}
		}
		hdr := make([]byte, 20, 32)
		hdr[12] = 8 << 4 // data offset: 32 bytes
		b := append(hdr, opts...)
		var seg Segment
		if v := d.tcp(b, len(b), cliV4, srvV4, 0, &seg); v != isTCP {
			t.Fatalf("verdict %v", v)
		}
		var want Options
		walkOptions(opts, &want)
		if seg.Opts != want {
			t.Fatalf("options % x: %+v, the walk gives %+v", opts, seg.Opts, want)
		}
	}
}

func TestOptionLayout(t *testing.T) {
	cases := []struct {
		opts []byte
		want string
	}{
		{nil, ""},
		{[]byte{2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}, "mss,sok,ts,nop,ws"}, // Linux SYN
		{[]byte{2, 4, 5, 0xb4, 1, 3, 3, 8, 1, 1, 4, 2}, "mss,nop,ws,nop,nop,sok"},                     // Windows SYN
		{[]byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, "nop,nop,ts"},                                   // the shortcut
		{[]byte{2, 4, 5, 0xb4, 0, 0, 0, 0}, "mss,eol"},
		{[]byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 5, 0xb4}, "nop,nop,nop,nop,nop,nop,nop,nop"}, // first eight only
		{[]byte{99, 2}, "?99"},
	}
	for _, c := range cases {
		var o Options
		parseOptions(c.opts, &o)
		if got := o.Layout.String(); got != c.want {
			t.Errorf("% x: layout %q, want %q", c.opts, got, c.want)
		}
	}
}
