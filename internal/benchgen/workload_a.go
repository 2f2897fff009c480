package benchgen

import "time"

// Workload A: short request/response connections (HTTPS API calls
// over TLS, kept alive for a few requests)
// from many clients to a few servers, recorded by a tap in front of the servers. A fixed
// number of slots each run one connection after another, so about Concurrent connections are
// open at any time; the first connection of each slot starts at a random point of the first
// connection lifetime, so the capture starts ramped up.
//
// A connection, as seen at the tap (client packets arrive one client round trip after the
// server packet they answer):
//
//	SYN, SYN-ACK, ACK                        handshake, Linux options
//	k × (request, response[, delayed ACK])   k in 1..5, one segment each; the client's pure
//	                                         ACK only when it thinks for more than 40 ms
//	FIN, FIN-ACK, ACK                        the client closes: client TIME_WAIT, server CLOSED
//
// That is 12.8 packets per connection on average, so the full workload has ~1.28 million.

const (
	numClientsA     = 1000
	numServersA     = 16
	delayedACK      = 40 * time.Millisecond
	meanThinkA      = 30 * time.Millisecond
	meanLifetimeA   = 300 * time.Millisecond // measured: sets how the first connections spread
	clientPortFirst = 32768                  // Linux ip_local_port_range
	clientPortLast  = 60999
)

// host is one end of connections at a fixed address.
type host struct {
	mac  mac
	ip   ip4
	port uint16 // servers: the listening port; clients: the next ephemeral port
	ttl  uint8  // as seen at the tap
	rtt  time.Duration
}

// aPkt is one packet of a connection being generated.
type aPkt struct {
	at           int64
	fromClient   bool
	flags        uint8
	seq, ack     uint32
	win          uint16
	tsval, tsecr uint32
	payload      int
}

// aConn is the connection a slot is playing.
type aConn struct {
	pkts         []aPkt
	next         int
	cli, srv     *host
	cport        uint16
	cipID, sipID uint16
}

func (c *aConn) nextAt() int64 { return c.pkts[c.next].at }

func genA(pw *pcapWriter, r *rng, cfg Config) (Result, error) {
	nConns, nSlots := cfg.sizesA()
	gateway := mac{0x00, 0x1b, 0x21, 0xaa, 0x00, 0x01}
	clients := make([]host, numClientsA)
	for i := range clients {
		clients[i] = host{mac: gateway, ip: ip4From(0x0a010000 + uint32(i) + 1),
			port: uint16(r.between(clientPortFirst, clientPortLast)),
			ttl:  uint8(64 - r.between(2, 14)),
			rtt:  time.Duration(r.between(int64(2*time.Millisecond), int64(80*time.Millisecond)))}
	}
	serverPorts := [...]uint16{443, 443, 443, 8443}
	servers := make([]host, numServersA)
	for i := range servers {
		servers[i] = host{mac: mac{0x52, 0x54, 0x00, 0x10, 0x00, byte(i + 1)},
			ip: ip4From(0xc0a80a01 + uint32(i)), port: serverPorts[i%len(serverPorts)], ttl: 64}
	}

	slots := make([]aConn, nSlots)
	started := 0
	h := make(slotHeap, 0, nSlots)
	for i := range slots {
		buildConnA(&slots[i], r, clients, servers, r.Int64N(int64(meanLifetimeA)))
		started++
		h.push(int32(i), slots)
	}
	var pk packet
	var opts tcpOptions
	for len(h) > 0 {
		c := &slots[h[0]]
		p := &c.pkts[c.next]
		pk = packet{at: p.at, seq: p.seq, ack: p.ack, flags: p.flags, window: p.win,
			payload: p.payload, opts: &opts, tls: true}
		if p.fromClient {
			pk.srcMAC, pk.dstMAC, pk.src, pk.dst = c.cli.mac, c.srv.mac, c.cli.ip, c.srv.ip
			pk.sport, pk.dport, pk.ttl, pk.ipID = c.cport, c.srv.port, c.cli.ttl, c.cipID
			pk.padShort = true
			c.cipID++
		} else {
			pk.srcMAC, pk.dstMAC, pk.src, pk.dst = c.srv.mac, c.cli.mac, c.srv.ip, c.cli.ip
			pk.sport, pk.dport, pk.ttl, pk.ipID = c.srv.port, c.cport, c.srv.ttl, c.sipID
			c.sipID++
		}
		if p.flags&flagSYN != 0 {
			opts.synLinux(1460, p.tsval, p.tsecr, 7)
		} else {
			opts.tsOnly(p.tsval, p.tsecr)
		}
		if err := pw.write(&pk); err != nil {
			return Result{}, err
		}
		c.next++
		switch {
		case c.next < len(c.pkts):
			h.fix(0, slots)
		case started < nConns:
			// The slot's next connection: a new client arrives shortly after.
			buildConnA(c, r, clients, servers, p.at+r.exp(2*time.Millisecond))
			started++
			h.fix(0, slots)
		default:
			h.pop(slots)
		}
	}
	return Result{Conns: nConns}, nil
}

// buildConnA lays out one connection starting at start (the SYN's arrival at the tap).
func buildConnA(c *aConn, r *rng, clients, servers []host, start int64) {
	cli := &clients[r.IntN(len(clients))]
	srv := &servers[r.IntN(len(servers))]
	c.cli, c.srv, c.next, c.pkts = cli, srv, 0, c.pkts[:0]
	c.cport = cli.port
	cli.port += 2 // Linux hands out even ports to connect() first
	if cli.port > clientPortLast || cli.port < clientPortFirst {
		cli.port = clientPortFirst + cli.port%2
	}
	c.cipID, c.sipID = uint16(r.Uint32()), uint16(r.Uint32())

	rtt := int64(cli.rtt) + r.exp(200*time.Microsecond)
	owd := rtt / 2
	ci, si := r.Uint32(), r.Uint32()
	cts, sts := tsClock(r.Uint32()), tsClock(r.Uint32())
	var lastCliTS, lastSrvTS uint32
	cseq, sseq := ci, si
	winC := func() uint16 { return uint16(min(502+(sseq-si)/256, 3000)) }
	winS := func() uint16 { return uint16(min(509+(cseq-ci)/256, 3000)) }
	fromClient := func(at int64, flags uint8, win uint16, n int) {
		lastCliTS = cts.at(at - owd)
		c.pkts = append(c.pkts, aPkt{at: at, fromClient: true, flags: flags, seq: cseq, ack: sseq,
			win: win, tsval: lastCliTS, tsecr: lastSrvTS, payload: n})
		if flags&flagACK == 0 {
			c.pkts[len(c.pkts)-1].ack = 0
		}
	}
	fromServer := func(at int64, flags uint8, win uint16, n int) {
		lastSrvTS = sts.at(at)
		c.pkts = append(c.pkts, aPkt{at: at, flags: flags, seq: sseq, ack: cseq, win: win,
			tsval: lastSrvTS, tsecr: lastCliTS, payload: n})
	}

	t := start
	fromClient(t, flagSYN, 64240, 0)
	cseq++
	t += r.between(15_000, 80_000)
	fromServer(t, flagSYN|flagACK, 65160, 0)
	sseq++
	t += rtt
	fromClient(t, flagACK, winC(), 0)
	t += r.between(5_000, 60_000)
	k := r.between(1, 5)
	for range k {
		req := int(min(60+r.exp(250), 1400))
		fromClient(t, flagPSH|flagACK, winC(), req)
		cseq += uint32(req)
		t += 30_000 + r.exp(800*time.Microsecond)
		resp := int(min(120+r.exp(600), 1448))
		fromServer(t, flagPSH|flagACK, winS(), resp)
		sseq += uint32(resp)
		think := r.exp(meanThinkA)
		if think > int64(delayedACK) {
			fromClient(t+rtt+int64(delayedACK), flagACK, winC(), 0)
		}
		t += rtt + think
	}
	fromClient(t, flagFIN|flagACK, winC(), 0)
	cseq++
	t += r.between(20_000, 120_000)
	fromServer(t, flagFIN|flagACK, winS(), 0)
	sseq++
	t += rtt
	fromClient(t, flagACK, winC(), 0)
}

// slotHeap is a min-heap of slot indices on (time of the slot's next packet, index): the
// index breaks ties, so the interleaving is a function of the seed alone.
type slotHeap []int32

func (h slotHeap) less(i, j int, s []aConn) bool {
	a, b := s[h[i]].nextAt(), s[h[j]].nextAt()
	return a < b || a == b && h[i] < h[j]
}

func (h *slotHeap) push(x int32, s []aConn) {
	*h = append(*h, x)
	for i := len(*h) - 1; i > 0; {
		p := (i - 1) / 2
		if !h.less(i, p, s) {
			break
		}
		(*h)[i], (*h)[p] = (*h)[p], (*h)[i]
		i = p
	}
}

func (h *slotHeap) pop(s []aConn) {
	last := len(*h) - 1
	(*h)[0] = (*h)[last]
	*h = (*h)[:last]
	if last > 0 {
		h.fix(0, s)
	}
}

// fix restores the heap after the key at i grew (a slot's next packet is always later).
func (h slotHeap) fix(i int, s []aConn) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l, s) {
			m = r
		}
		if !h.less(m, i, s) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
