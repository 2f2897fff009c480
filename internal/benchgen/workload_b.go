package benchgen

import "time"

// Workload B: a SYN flood against one server, recorded at the server: SYNs from distinct
// spoofed sources, about 100,000 a second, never answered (the server is saturated or the
// packets are dropped by a filter behind the tap). The SYNs mimic the usual tools: bare
// 20-byte headers (hping3, Mirai-style: sequence number = target address), and copies of Linux
// and Windows SYNs with their options.

func genB(pw *pcapWriter, r *rng, cfg Config) (Result, error) {
	n := scaled(FullSYNsB, cfg.scale())
	target := ip4From(0xcb00710a) // 203.0.113.10
	const targetPort = 80
	gateway := mac{0x00, 0x1b, 0x21, 0xaa, 0x00, 0x01}
	server := mac{0x52, 0x54, 0x00, 0x20, 0x00, 0x01}
	// Sources: spoofed at random over the whole unicast space, as flooding tools do. An odd
	// multiplier is a bijection of 2^32, so the sources are all distinct; the addresses that
	// are never routed as sources (0/8, 127/8, multicast and above) are skipped. (Sources all
	// within one /8 would also be unrealistic for another reason: tcpdump caches addresses in
	// a table hashed on their first 12 bits, and slows down quadratically, >300 s for 1M.)
	offset := r.Uint32()
	j := uint32(0)
	nextSource := func() ip4 {
		for {
			a := j*2654435761 + offset
			j++
			if o := a >> 24; o != 0 && o != 127 && o < 224 {
				return ip4From(a)
			}
		}
	}
	var opts tcpOptions
	pk := packet{srcMAC: gateway, dstMAC: server, dst: target, dport: targetPort, flags: flagSYN,
		padShort: true}
	var t int64
	for range n {
		pk.at, pk.src, pk.sport = t, nextSource(), uint16(r.between(1024, 65535))
		pk.ipID, pk.seq = uint16(r.Uint32()), r.Uint32()
		switch kind := r.IntN(4); kind {
		case 0: // hping3 -S --flood
			pk.ttl, pk.window, pk.opts = 64, 512, nil
		case 1: // Mirai-style: sequence number = destination address
			pk.ttl, pk.window, pk.opts = uint8(r.between(30, 255)), uint16(r.Uint32()), nil
			pk.seq = 0xcb00710a
		case 2: // Linux connect()
			opts.synLinux(1460, r.Uint32(), 0, 7)
			pk.ttl, pk.window, pk.opts = uint8(64-r.between(3, 20)), 64240, &opts
		case 3: // Windows connect(): MSS, NOP, WS 8, NOP, NOP, SACK-permitted
			opts.reset()
			opts.mss(1460)
			opts.nop()
			opts.wscale(8)
			opts.nop()
			opts.nop()
			opts.sackPerm()
			pk.ttl, pk.window, pk.opts = uint8(128-r.between(3, 20)), 64240, &opts
		}
		if err := pw.write(&pk); err != nil {
			return Result{}, err
		}
		t += r.exp(10 * time.Microsecond)
	}
	return Result{Conns: n}, nil
}
