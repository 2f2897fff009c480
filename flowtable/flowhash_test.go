package flowtable

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// endpointHashAs16 is endpointHash as it was written first, every address through As16: the
// reference the IPv4 shortcut must agree with (--shard splits depend on the exact values).
func endpointHashAs16(ap netip.AddrPort) uint64 {
	a := ap.Addr().As16()
	hi, lo := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	h1, l1 := bits.Mul64(hi^0xa0761d6478bd642f, lo^0xe7037ed1a0b428db)
	h2, l2 := bits.Mul64(h1^l1^uint64(ap.Port())*0x8ebc6af09c88c6e3, 0x589965cc75374cc3)
	return h2 ^ l2
}

func TestEndpointHashMatchesAs16(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	addrs := []netip.Addr{
		{}, // the zero Addr (a Segment never has one, but the hash must not care)
		netip.MustParseAddr("0.0.0.0"),
		netip.MustParseAddr("255.255.255.255"),
		netip.MustParseAddr("10.1.2.3"),
		netip.MustParseAddr("::"),
		netip.MustParseAddr("::ffff:10.1.2.3"), // IPv4-mapped IPv6: the same bytes as 10.1.2.3
		netip.MustParseAddr("fe80::1%eth0"),
		netip.MustParseAddr("2001:db8::1"),
	}
	for range 2000 {
		var b4 [4]byte
		var b16 [16]byte
		binary.BigEndian.PutUint32(b4[:], r.Uint32())
		binary.BigEndian.PutUint64(b16[:8], r.Uint64())
		binary.BigEndian.PutUint64(b16[8:], r.Uint64())
		addrs = append(addrs, netip.AddrFrom4(b4), netip.AddrFrom16(b16), netip.AddrFrom16(netip.AddrFrom4(b4).As16()))
	}
	for _, a := range addrs {
		for _, port := range []uint16{0, 80, uint16(r.Uint32())} {
			ap := netip.AddrPortFrom(a, port)
			if got, want := endpointHash(ap), endpointHashAs16(ap); got != want {
				t.Fatalf("endpointHash(%v) = %#x, want %#x", ap, got, want)
			}
		}
	}
}

// Fixed values: FlowHash decides --shard splits, which must not change between versions.
func TestFlowHashFixed(t *testing.T) {
	for _, c := range []struct {
		src, dst string
		want     uint64
	}{
		{"10.0.0.1:40000", "10.0.0.2:80", 0xfb90894bbfd4eece},
		{"[2001:db8::1]:40000", "[2001:db8::2]:80", 0x44a748b6e50762f0},
	} {
		src, dst := netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst)
		if got, back := FlowHash(src, dst), FlowHash(dst, src); got != c.want || back != c.want {
			t.Errorf("FlowHash(%v, %v) = %#x, %#x the other way; want %#x", src, dst, got, back, c.want)
		}
	}
}
