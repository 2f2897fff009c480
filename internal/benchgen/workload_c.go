package benchgen

import "time"

// Workload C: one bulk download over a 1 Gbit/s path with a 20 ms round trip, recorded on the
// sending server (tcpdump on the host, so every transmission is seen, including the ones the
// path loses). A small discrete-event simulation plays both stacks:
//
//   - sender (server): Reno-style congestion window (slow start, additive increase, halved
//     on fast retransmit, one segment after a timeout), SACK-driven retransmission of holes
//     during recovery, 220 ms retransmission timeout with backoff, 1448-byte segments paced
//     at line rate, PSH every 45 segments, FIN right after the last data;
//   - path: independent losses (1.5e-4 per segment) plus rare bursts of 2 to 6, and a few
//     lost ACKs, all behind the tap;
//   - receiver (client): delayed ACK every second segment (40 ms timer), an immediate ACK
//     with up to 3 SACK blocks for every out-of-order or duplicate segment (the dup ACKs),
//     an advertised window that grows as Linux autotuning does; it closes once it has read
//     everything, so the server ends in TIME_WAIT and the client CLOSED.
//
// The amount of data is chosen on the fly so that the capture has the requested number of
// packets (give or take the final round trip).

const (
	mssC        = 1448
	rttC        = 20 * time.Millisecond
	lineBitsC   = 1_000_000_000 // bits per second
	lossC       = 1.5e-4
	burstC      = 3e-6
	ackLossC    = 1e-4
	rtoC        = 220 * time.Millisecond // Linux: 200 ms minimum + the round trip
	wsC         = 7
	maxRawWinC  = 23000 // advertised window cap (×128: ~2.9 MB, ~2,000 segments)
	cliCloseGap = 300 * time.Microsecond
)

// Event kinds of the simulation.
const (
	evSend   = iota // the sender's line is free again
	evData          // a data segment reaches the receiver
	evAck           // an ACK reaches the sender (and the tap)
	evRTO           // the sender's retransmission timer
	evDelAck        // the receiver's delayed-ACK timer
	evCliFIN        // the client's FIN reaches the server
)

type ackInfo struct {
	next         int64 // cumulative ACK, in segment numbers
	sack         [3][2]int64
	nsack        uint8
	tsval, tsecr uint32
	win          uint16
}

type cEvent struct {
	at    int64
	ord   uint64
	kind  uint8
	idx   int64  // evData: segment number
	tsval uint32 // evData: the segment's timestamp
	ack   ackInfo
}

type simC struct {
	r  *rng
	pw *pcapWriter

	events []cEvent
	ord    uint64

	target int64 // packets the capture should have
	nSeg   int64 // segment number of the FIN (segments before it carry data); -1 until decided

	cli, srv   host
	cport      uint16
	cipID      uint16
	sipID      uint16
	cts, sts   tsClock
	cseq       uint32 // client's next sequence number (after its request)
	sbase      uint32 // sequence number of data segment 0
	opts       tcpOptions
	pk         packet
	owd        int64
	closed     bool
	inFlight   int // data segments on the path
	cliFINSent bool

	// Sender.
	una, nxt    int64
	sacked      []bool
	sackedCount int64
	highSacked  int64
	cwnd        int64
	ssthresh    int64
	caCount     int64
	rwnd        int64
	dupacks     int
	recovery    bool
	recover     int64
	rxtNext     int64
	lostUpTo    int64
	credit      int
	lineFree    int64
	sendPending bool
	rtoDeadline int64
	rtoPending  bool
	rtoBackoff  uint
	burstLeft   int
	srvTSRecent uint32 // the client's latest TSval, which the server echoes

	// Receiver.
	rcvNxt      int64
	ooo         [][2]int64 // out-of-order ranges [start, end) above rcvNxt, ascending
	recent      int64      // a segment number in the most recently extended range
	pending     int        // in-order segments not yet acknowledged
	delAckAt    int64
	delPending  bool
	cliTSRecent uint32 // the server's latest TSval, which the client echoes
}

func genC(pw *pcapWriter, r *rng, cfg Config) (Result, error) {
	s := &simC{r: r, pw: pw, target: int64(scaled(FullPacketsC, cfg.scale())), nSeg: -1,
		cwnd: 10, ssthresh: 1 << 40, rwnd: 44, recent: -1}
	s.cli = host{mac: mac{0x00, 0x1b, 0x21, 0xaa, 0x00, 0x01}, ip: ip4From(0xc6336407), ttl: 52} // 198.51.100.7
	s.srv = host{mac: mac{0x52, 0x54, 0x00, 0x30, 0x00, 0x01}, ip: ip4From(0xc0000250), port: 8443, ttl: 64}
	s.cport = uint16(r.between(clientPortFirst, clientPortLast))
	s.cipID, s.sipID = uint16(r.Uint32()), uint16(r.Uint32())
	s.cts, s.sts = tsClock(r.Uint32()), tsClock(r.Uint32())
	s.owd = int64(rttC) / 2
	s.opts.reset()
	if err := s.handshake(); err != nil {
		return Result{}, err
	}
	for len(s.events) > 0 && !s.closed {
		e := s.pop()
		var err error
		switch e.kind {
		case evSend:
			s.sendPending = false
			err = s.trySend(e.at)
		case evData:
			s.inFlight--
			err = s.receive(e.at, e.idx, e.tsval)
		case evAck:
			if err = s.writeACK(e.at, &e.ack); err == nil {
				err = s.onACK(e.at, &e.ack)
			}
		case evRTO:
			s.rtoPending = false
			err = s.onRTO(e.at)
		case evDelAck:
			s.delPending = false
			if s.pending > 0 {
				if e.at < s.delAckAt {
					s.armDelAck(s.delAckAt)
				} else {
					s.sendACK(e.at)
				}
			}
		case evCliFIN:
			err = s.finish(e.at)
		}
		if err != nil {
			return Result{}, err
		}
		if !s.cliFINSent && s.nSeg >= 0 && s.rcvNxt > s.nSeg && s.inFlight == 0 {
			// The client has read everything and the server's FIN: it closes too.
			s.cliFINSent = true
			s.push(cEvent{at: e.at + int64(cliCloseGap) + s.owd, kind: evCliFIN})
		}
	}
	return Result{Conns: 1}, nil
}

// handshake writes SYN, SYN-ACK, ACK and the client's request, and starts the sender.
func (s *simC) handshake() error {
	ci, si := s.r.Uint32(), s.r.Uint32()
	rtt := int64(rttC)
	t := int64(0)
	cliTS := s.cts.at(t - s.owd)
	s.opts.synLinux(1460, cliTS, 0, wsC)
	if err := s.write(t, true, flagSYN, ci, 0, 64240, 0); err != nil {
		return err
	}
	t += 30_000
	srvTS := s.sts.at(t)
	s.opts.synLinux(1460, srvTS, cliTS, wsC)
	if err := s.write(t, false, flagSYN|flagACK, si, ci+1, 65160, 0); err != nil {
		return err
	}
	t += rtt
	s.opts.tsOnly(s.cts.at(t-s.owd), srvTS)
	if err := s.write(t, true, flagACK, ci+1, si+1, 502, 0); err != nil {
		return err
	}
	t += 20_000
	const request = 187
	s.cliTSRecent = s.cts.at(t - s.owd)
	s.opts.tsOnly(s.cliTSRecent, srvTS)
	if err := s.write(t, true, flagPSH|flagACK, ci+1, si+1, 502, request); err != nil {
		return err
	}
	s.cseq, s.sbase = ci+1+request, si+1
	s.srvTSRecent = s.cliTSRecent
	s.cliTSRecent = srvTS
	s.push(cEvent{at: t + 100_000, kind: evSend})
	s.sendPending = true
	return nil
}

// write records one packet at the tap.
func (s *simC) write(at int64, fromClient bool, flags uint8, seq, ack uint32, win uint16, n int) error {
	pk := &s.pk
	*pk = packet{at: at, seq: seq, ack: ack, flags: flags, window: win, payload: n, opts: &s.opts, tls: true}
	if fromClient {
		pk.srcMAC, pk.dstMAC, pk.src, pk.dst = s.cli.mac, s.srv.mac, s.cli.ip, s.srv.ip
		pk.sport, pk.dport, pk.ttl, pk.ipID, pk.padShort = s.cport, s.srv.port, s.cli.ttl, s.cipID, true
		s.cipID++
	} else {
		pk.srcMAC, pk.dstMAC, pk.src, pk.dst = s.srv.mac, s.cli.mac, s.srv.ip, s.cli.ip
		pk.sport, pk.dport, pk.ttl, pk.ipID = s.srv.port, s.cport, s.srv.ttl, s.sipID
		s.sipID++
	}
	return s.pw.write(pk)
}

// seqAt is the server sequence number at the start of segment i (past the FIN for i > nSeg).
func (s *simC) seqAt(i int64) uint32 {
	if s.nSeg >= 0 && i > s.nSeg {
		return s.sbase + uint32(s.nSeg)*mssC + 1
	}
	return s.sbase + uint32(i)*mssC
}

// ---- sender ----

func txTime(payload int) int64 {
	// Ethernet preamble, FCS and gap: 24 bytes; TCP/IP/Ethernet headers with timestamps: 66.
	return int64(payload+66+24) * 8 * int64(time.Second) / lineBitsC
}

// trySend sends what the window and the line allow now: one segment, then it waits for the
// line to be free again.
func (s *simC) trySend(now int64) error {
	if s.closed {
		return nil
	}
	if s.lineFree > now {
		s.wakeSender(s.lineFree)
		return nil
	}
	if s.nSeg < 0 && s.pw.packets+(s.nxt-s.una)/2+4 >= s.target {
		s.nSeg = s.nxt // the application has written everything: the FIN is next
	}
	canNew := (s.nSeg < 0 || s.nxt <= s.nSeg) && s.nxt-s.una < s.rwnd
	if s.recovery {
		if s.credit <= 0 {
			return nil
		}
		for s.rxtNext < s.lostUpTo && (s.rxtNext < s.una || s.sacked[s.rxtNext]) {
			s.rxtNext++
		}
		if s.rxtNext < s.lostUpTo {
			s.credit--
			s.rxtNext++
			return s.transmit(now, s.rxtNext-1)
		}
		if canNew {
			s.credit--
			s.nxt++
			return s.transmit(now, s.nxt-1)
		}
		return nil
	}
	if canNew && s.nxt-s.una-s.sackedCount < s.cwnd {
		s.nxt++
		return s.transmit(now, s.nxt-1)
	}
	return nil
}

func (s *simC) wakeSender(at int64) {
	if !s.sendPending {
		s.sendPending = true
		s.push(cEvent{at: at, kind: evSend})
	}
}

// transmit sends segment i (new or again): the tap records it; the path may lose it.
func (s *simC) transmit(now int64, i int64) error {
	for int64(len(s.sacked)) <= i {
		s.sacked = append(s.sacked, false)
	}
	fin := i == s.nSeg
	flags, n := uint8(flagACK), mssC
	if fin {
		flags, n = flagFIN|flagACK, 0
	} else if i%45 == 44 {
		flags |= flagPSH
	}
	tsval := s.sts.at(now)
	s.opts.tsOnly(tsval, s.srvTSRecent)
	if err := s.write(now, false, flags, s.seqAt(i), s.cseq, 509, n); err != nil {
		return err
	}
	s.lineFree = now + txTime(n)
	lost := false
	switch {
	case s.burstLeft > 0:
		s.burstLeft--
		lost = true
	case s.r.chance(lossC):
		lost = true
	case s.r.chance(burstC):
		s.burstLeft = int(s.r.between(1, 5))
		lost = true
	}
	if !lost {
		s.inFlight++
		s.push(cEvent{at: s.lineFree + s.owd, kind: evData, idx: i, tsval: tsval})
	}
	if s.rtoDeadline == 0 {
		s.armRTO(now)
	}
	s.wakeSender(s.lineFree)
	return nil
}

func (s *simC) armRTO(now int64) {
	s.rtoDeadline = now + int64(rtoC)<<s.rtoBackoff
	if !s.rtoPending {
		s.rtoPending = true
		s.push(cEvent{at: s.rtoDeadline, kind: evRTO})
	}
}

func (s *simC) onRTO(now int64) error {
	if s.rtoDeadline == 0 || s.una >= s.nxt {
		s.rtoDeadline = 0
		return nil
	}
	if now < s.rtoDeadline {
		s.rtoPending = true
		s.push(cEvent{at: s.rtoDeadline, kind: evRTO})
		return nil
	}
	// Timeout: everything not SACKed is presumed lost; restart from one segment.
	s.ssthresh = max((s.nxt-s.una)/2, 2)
	s.cwnd, s.caCount = 1, 0
	s.recovery, s.recover = true, s.nxt
	s.rxtNext, s.lostUpTo, s.credit = s.una, s.nxt, 1
	s.dupacks = 0
	if s.rtoBackoff < 6 {
		s.rtoBackoff++
	}
	s.armRTO(now)
	return s.trySend(now)
}

func (s *simC) onACK(now int64, a *ackInfo) error {
	s.srvTSRecent = a.tsval
	s.rwnd = max(int64(a.win)<<wsC/mssC, 2)
	for _, b := range a.sack[:a.nsack] {
		for i := max(b[0], s.una); i < b[1]; i++ {
			if !s.sacked[i] {
				s.sacked[i] = true
				s.sackedCount++
				s.highSacked = max(s.highSacked, i+1)
			}
		}
	}
	switch {
	case a.next > s.una:
		acked := a.next - s.una
		for i := s.una; i < a.next; i++ {
			if s.sacked[i] {
				s.sackedCount--
			}
		}
		s.una = a.next
		s.dupacks = 0
		s.rtoBackoff = 0
		s.rtoDeadline = 0
		if s.una < s.nxt {
			s.armRTO(now)
		}
		if s.recovery {
			if s.una >= s.recover {
				s.recovery = false
				s.cwnd = max(s.ssthresh, 2)
			} else {
				s.credit += 2 // a partial ACK: retransmit the next hole, and one more
			}
		} else if s.cwnd < s.ssthresh {
			s.cwnd += acked
		} else {
			s.caCount += acked
			for s.caCount >= s.cwnd {
				s.caCount -= s.cwnd
				s.cwnd++
			}
		}
		s.cwnd = min(s.cwnd, 4000)
		s.rxtNext = max(s.rxtNext, s.una)
	case a.next == s.una && s.una < s.nxt:
		s.dupacks++
		switch {
		case s.recovery:
			s.credit++
			s.lostUpTo = max(s.lostUpTo, s.highSacked)
		case s.dupacks >= 3:
			// Fast retransmit: enter recovery, halve the window.
			s.ssthresh = max((s.nxt-s.una)/2, 2)
			s.cwnd, s.caCount = s.ssthresh, 0
			s.recovery, s.recover = true, s.nxt
			s.rxtNext, s.lostUpTo, s.credit = s.una, max(s.highSacked, s.una+1), 1
		}
	}
	return s.trySend(now)
}

// ---- receiver ----

func (s *simC) receive(now, i int64, tsval uint32) error {
	s.cliTSRecent = tsval
	if i < s.rcvNxt || s.inOOO(i) {
		s.sendACK(now) // a duplicate: ACK at once
		return nil
	}
	if i > s.rcvNxt {
		s.addOOO(i)
		s.sendACK(now) // out of order: a dup ACK with SACK blocks
		return nil
	}
	s.rcvNxt++
	filled := false
	if len(s.ooo) > 0 && s.ooo[0][0] == s.rcvNxt {
		s.rcvNxt = s.ooo[0][1]
		s.ooo = s.ooo[:copy(s.ooo, s.ooo[1:])]
		filled = true
	}
	s.pending++
	if len(s.ooo) > 0 || filled || i == s.nSeg || s.pending >= 2 {
		s.sendACK(now)
		return nil
	}
	s.delAckAt = now + int64(delayedACK)
	s.armDelAck(s.delAckAt)
	return nil
}

func (s *simC) armDelAck(at int64) {
	if !s.delPending {
		s.delPending = true
		s.push(cEvent{at: at, kind: evDelAck})
	}
}

func (s *simC) inOOO(i int64) bool {
	for _, rg := range s.ooo {
		if i >= rg[0] && i < rg[1] {
			return true
		}
	}
	return false
}

func (s *simC) addOOO(i int64) {
	s.recent = i
	k := 0
	for k < len(s.ooo) && s.ooo[k][1] < i {
		k++
	}
	switch {
	case k < len(s.ooo) && s.ooo[k][1] == i:
		s.ooo[k][1] = i + 1
		if k+1 < len(s.ooo) && s.ooo[k+1][0] == i+1 {
			s.ooo[k][1] = s.ooo[k+1][1]
			s.ooo = append(s.ooo[:k+1], s.ooo[k+2:]...)
		}
	case k < len(s.ooo) && s.ooo[k][0] == i+1:
		s.ooo[k][0] = i
	default:
		s.ooo = append(s.ooo, [2]int64{})
		copy(s.ooo[k+1:], s.ooo[k:])
		s.ooo[k] = [2]int64{i, i + 1}
	}
}

// sendACK sends the receiver's ACK now: cumulative, with SACK blocks for what is held out of
// order (the most recently extended block first, as RFC 2018 asks).
func (s *simC) sendACK(now int64) {
	s.pending = 0
	a := ackInfo{next: s.rcvNxt, tsval: s.cts.at(now), tsecr: s.cliTSRecent,
		win: uint16(min(502+s.rcvNxt*4, maxRawWinC))}
	first := -1
	for k, rg := range s.ooo {
		if s.recent >= rg[0] && s.recent < rg[1] {
			a.sack[0], a.nsack, first = rg, 1, k
			break
		}
	}
	for k := len(s.ooo) - 1; k >= 0 && a.nsack < 3; k-- {
		if k != first {
			a.sack[a.nsack] = s.ooo[k]
			a.nsack++
		}
	}
	if s.r.chance(ackLossC) {
		return
	}
	s.push(cEvent{at: now + s.owd, kind: evAck, ack: a})
}

// writeACK records an ACK from the client as it reaches the server.
func (s *simC) writeACK(at int64, a *ackInfo) error {
	var edges [3][2]uint32
	for k, b := range a.sack[:a.nsack] {
		edges[k] = [2]uint32{s.seqAt(b[0]), s.seqAt(b[1])}
	}
	s.opts.tsOnly(a.tsval, a.tsecr)
	if a.nsack > 0 {
		s.opts.nop()
		s.opts.nop()
		s.opts.sack(edges[:a.nsack])
	}
	return s.write(at, true, flagACK, s.cseq, s.seqAt(a.next), a.win, 0)
}

// finish records the client's FIN and the server's ACK of it: server TIME_WAIT, client CLOSED.
func (s *simC) finish(at int64) error {
	end := s.seqAt(s.nSeg + 1)
	cliTS := s.cts.at(at - s.owd)
	s.opts.tsOnly(cliTS, s.cliTSRecent)
	win := uint16(min(502+s.rcvNxt*4, maxRawWinC))
	if err := s.write(at, true, flagFIN|flagACK, s.cseq, end, win, 0); err != nil {
		return err
	}
	at += 25_000
	s.opts.tsOnly(s.sts.at(at), cliTS)
	if err := s.write(at, false, flagACK, end, s.cseq+1, 509, 0); err != nil {
		return err
	}
	s.closed = true
	return nil
}

// ---- event queue: a min-heap on (time, order of scheduling) ----

func (s *simC) push(e cEvent) {
	s.ord++
	e.ord = s.ord
	s.events = append(s.events, e)
	h := s.events
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if !evLess(&h[i], &h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (s *simC) pop() cEvent {
	h := s.events
	e := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	s.events = h
	for i, n := 0, len(h); ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && evLess(&h[r], &h[l]) {
			m = r
		}
		if !evLess(&h[m], &h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return e
}

func evLess(a, b *cEvent) bool { return a.at < b.at || a.at == b.at && a.ord < b.ord }
