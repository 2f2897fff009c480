package kernellab

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// moreScenarios: losses after the tap, simultaneous open, port reuse, Fast Open, forged RSTs,
// random loss, capture gaps, endpoint captures, SPAN duplicates, at-snapshots, SYN timers.
func moreScenarios() []*Scenario {
	byName := map[string]*Scenario{}
	for _, s := range baseScenarios() {
		byName[s.Name] = s
	}
	rl := &Scenario{Name: "random-loss", Play: randomLoss,
		Description: "IPv4: eight connections with mixed fates (transfers both ways, closes both ways, half-closes, idle) while 12% of the packets in each direction are dropped at random after the tap (client to server in the router's FORWARD chain, server to client in the client's INPUT chain); the loss is lifted at the end and the recorder waits until no retransmission timer is armed."}
	rlc := rl.WithTap(TapClient)
	rlc.Description = "IPv4: the traffic of random-loss captured by tcpdump on the client host itself (client namespace, its own interface), with the loss in the path: the router's FORWARD chain drops 12% of the packets each way, so the client's lost packets are in the capture and the server's are not."
	list := []*Scenario{
		// 1. Losses after the tap.
		{Name: "synack-dropped", Play: synackDropped(false),
			Description: "IPv4: the client's INPUT chain drops SYN-ACKs that the tap has seen; the client stays SYN_SENT retransmitting its SYN (at 1 s and 2 s), the server stays SYN_RECEIVED answering each SYN."},
		{Name: "synack-dropped-recovers", Play: synackDropped(true),
			Description: "IPv4: the client's INPUT chain drops SYN-ACKs for 1.5 s, then lets them through: the SYN retransmitted at 2 s gets a SYN-ACK that arrives, both ESTABLISHED, then request and answer."},
		{Name: "fin-ack-dropped", Play: finACKDropped,
			Description: "IPv4: the client closes; the server's kernel ACKs the FIN (server CLOSE_WAIT) but the client's INPUT chain drops everything from the server after the tap, so the client stays FIN_WAIT_1 retransmitting its FIN and the server answers each with a duplicate ACK."},
		{Name: "last-ack-dropped", Play: lastACKDropped,
			Description: "IPv4: client closes first, server closes after reading EOF; the client's final ACK (client TIME_WAIT) is dropped by the server's INPUT chain after the tap, so the server stays LAST_ACK and retransmits its FIN, which the client ACKs again (also dropped)."},
		{Name: "server-fin-dropped", Play: serverFINDropped,
			Description: "IPv4: after request and answer the server closes, but the client's INPUT chain drops the server's FINs after the tap; the server stays FIN_WAIT_1 retransmitting its FIN, the client stays ESTABLISHED."},
		{Name: "fin-ack-lost-once", Play: finACKLostOnce,
			Description: "IPv4: the client closes; the server's ACK of the FIN is dropped once by the client's INPUT chain after the tap; the client retransmits its FIN, the server (CLOSE_WAIT) ACKs it again and this ACK arrives: client FIN_WAIT_2."},
		{Name: "last-ack-lost-once", Play: lastACKLostOnce,
			Description: "IPv4: client closes first, server closes after EOF; the client's final ACK is dropped once by the server's INPUT chain after the tap; the server retransmits its FIN, the client (TIME_WAIT) ACKs it again and this ACK arrives: server CLOSED."},
		{Name: "data-lost", Play: dataLost,
			Description: "IPv4: the server's INPUT chain drops the first transmission of the client's request, the client's INPUT chain drops the third data segment of a 20000-byte answer (both after the tap); both are retransmitted (RTO/TLP, SACK), then the client closes first (client TIME_WAIT)."},
		// 2. Simultaneous open.
		{Name: "simultaneous-open", Play: simultaneousOpen,
			Description: "IPv4: both hosts bind a port and connect() to each other's; the router holds traffic from the first SYN until it holds both (NFQUEUE), so the SYNs cross: each side goes SYN_SENT -> SYN_RECEIVED -> ESTABLISHED; data both ways, then the client-namespace side closes first."},
		// 3. Port reuse.
		{Name: "reuse-after-server-tw", Play: reuseAfterServerTW,
			Description: "IPv4: a connection closes server-first (server TIME_WAIT); the client at once binds the same local port and connects again: the server's TIME_WAIT socket accepts the new SYN (higher ISN and timestamp) and the 4-tuple carries a second connection (ESTABLISHED)."},
		{Name: "reuse-after-client-tw", Play: reuseAfterClientTW,
			Description: "IPv4: a connection closes client-first (client TIME_WAIT); with net.ipv4.tcp_tw_reuse=1 in the client and 1.1 s later, the client binds the same local port (SO_REUSEADDR) and connects: its kernel recycles the TIME_WAIT socket and the 4-tuple carries a second connection (ESTABLISHED)."},
		{Name: "reuse-after-rst", Play: reuseAfterRST,
			Description: "IPv4: the client aborts a connection with RST (SO_LINGER 0) and at once binds the same local port and connects again; the second connection is ESTABLISHED."},
		// 4. Fast Open.
		{Name: "fastopen", Play: fastOpen,
			Description: "IPv4, net.ipv4.tcp_fastopen=3 on both hosts: the first connection asks for a cookie in its SYN and closes client-first; the second sends its request in the SYN (TCP_FASTOPEN_CONNECT) and stays ESTABLISHED; the third sends data in the SYN but the server's INPUT chain drops everything else from it, so the server, which accepted the data, stays SYN_RECEIVED retransmitting its SYN-ACK."},
		// 5. Forged RSTs.
		{Name: "forged-rst", Play: forgedRST(false), Tap: TapRouterServer,
			Description: "IPv4, tap between router and server: three established connections; the router injects a RST towards the server with the client's 4-tuple: out of the window on the first (ignored), in the window but not at RCV.NXT on the second (the server sends a challenge ACK), exactly at RCV.NXT on the third (the server's socket is reset; the client still ESTABLISHED)."},
		// 6. Random loss.
		rl,
		// 7. Capture gaps (losses before the tap).
		{Name: "gap-data", Play: gapDataPlay, Edit: &CaptureEdit{What: "the second data segment of the server's answer is removed from the capture (it was delivered)", Remove: removeNth(2, func(p Packet) bool { return fromServer(p) && p.PayloadLen > 0 })},
			Description: "IPv4: request, 8000-byte answer, client closes first (client TIME_WAIT); the capture lacks the second data segment of the answer, which the client received and acknowledged."},
		{Name: "gap-fin", Play: closeClientFirst(false), Edit: &CaptureEdit{What: "the client's FIN is removed from the capture (it was delivered)", Remove: removeNth(1, func(p Packet) bool { return fromClient(p) && p.Has(FlagFIN) })},
			Description: "IPv4: request and answer, client closes first, server closes after EOF (client TIME_WAIT); the capture lacks the client's FIN, which the server received and acknowledged."},
		{Name: "gap-syn", Play: halfClose(false), Edit: &CaptureEdit{What: "the client's SYN is removed from the capture: it starts at the SYN-ACK", Remove: removeNth(1, isSYN)},
			Description: "IPv4: half-close (client FIN_WAIT_2, server CLOSE_WAIT); the capture lacks the client's SYN and starts at the server's SYN-ACK."},
		// 9. SPAN duplicates.
		{Name: "span-duplicates", Play: spanMix, Tap: TapSpan,
			Description: "IPv4: four connections (client-first close with 10000 bytes, half-close, refused, SYN dropped by the router) captured on both router interfaces and merged, so every forwarded packet is in the capture twice (other MACs, TTL one lower) and the dropped SYN once."},
		{Name: "span-duplicates-exact", Play: spanMix, Edit: &CaptureEdit{What: "every record is written twice, byte for byte", Duplicate: true},
			Description: "IPv4: the traffic of span-duplicates captured on the router's client-facing interface, with every record written twice in a row (identical bytes and timestamps)."},
		// 10. At-snapshots.
		{Name: "lifecycle-at", Play: lifecycleAt,
			Description: "IPv4: one connection through its life with ss snapshots at quiet instants: after request and answer (ESTABLISHED both), after the client's shutdown(SHUT_WR) (FIN_WAIT_2 / CLOSE_WAIT), after the server answered and closed (client TIME_WAIT)."},
		// 8. Endpoint captures.
		byName["close-client-first"].WithTap(TapClient),
		byName["close-client-first"].WithTap(TapServer),
		byName["half-close"].WithTap(TapServer),
		byName["fin-dropped"].WithTap(TapClient),
		byName["refused"].WithTap(TapServer),
		byName["syn-dropped"].WithTap(TapClient),
		rlc,
		// Timers (slow).
		{Name: "syn-timeout", Play: synTimeout, Slow: true,
			Description: "IPv4: the router drops every SYN after the tap until the client's kernel gives up (net.ipv4.tcp_syn_retries=6 + tcp_syn_linear_timeouts=4 retransmissions, about 134 s): the client socket is CLOSED; snapshot 5 s after that, compared with --at."},
		{Name: "synack-timeout", Play: synackTimeout, Slow: true,
			Description: "IPv4: the router drops the handshake's ACK (and everything else from the client) after the tap until the server's kernel gives up on the request (net.ipv4.tcp_synack_retries=5, about 64 s): the client stays ESTABLISHED, the server has no socket; snapshot 5 s after that, compared with --at."},
	}
	return list
}

// removeNth selects the n-th TCP segment matching f.
func removeNth(n int, f func(Packet) bool) func(*CaptureInfo) ([]Packet, error) {
	return func(info *CaptureInfo) ([]Packet, error) {
		m := filter(info, f)
		if len(m) < n {
			return nil, fmt.Errorf("want a %d. matching segment to remove, capture has %d", n, len(m))
		}
		return []Packet{m[n-1]}, nil
	}
}

func synackDropped(recovers bool) func(*Run) error {
	return func(r *Run) error {
		l, err := r.Listen(false, 80)
		if err != nil {
			return err
		}
		rule := []string{"INPUT", "-p", "tcp", "--sport", "80", "--tcp-flags", "SYN,ACK", "SYN,ACK", "-j", "DROP"}
		if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Client, false, append([]string{"-A"}, rule...)...); err != nil {
			return err
		}
		if err := r.StartCapture(); err != nil {
			return err
		}
		c, err := r.Dial(false, 80, "synack-dropped")
		if err != nil {
			return err
		}
		t0 := time.Now()
		r.atLeast(2, "SYNs", isSYN)
		r.atLeast(2, "SYN-ACKs", isSYNACK)
		if !recovers {
			// SYNs at 0, 1, 2 s (next at 3 s); each answered at once by a SYN-ACK.
			if err := r.Sleep(2400*time.Millisecond - time.Since(t0)); err != nil {
				return err
			}
			if err := c.C.WaitState(r.Ctx, 0, tcpSynSent); err != nil {
				return err
			}
			r.atLeast(3, "SYNs", isSYN)
			r.Expect(c, "SYN_SENT", "SYN_RECEIVED")
			r.Settle = 50 * time.Millisecond
			return nil
		}
		if err := r.Sleep(1500*time.Millisecond - time.Since(t0)); err != nil {
			return err
		}
		if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Client, false, append([]string{"-D"}, rule...)...); err != nil {
			return err
		}
		if err := c.C.WaitState(r.Ctx, r.wait(), tcpEstablished); err != nil {
			return err
		}
		s, err := l.Accept(r.Ctx, r.wait(), "server "+c.String())
		if err != nil {
			return err
		}
		c.S = r.Lab.Track(s)
		if err := r.Exchange(c, httpReq, httpResp); err != nil {
			return err
		}
		r.Expect(c, "ESTABLISHED", "ESTABLISHED")
		return nil
	}
}

func finACKDropped(r *Run) error {
	c, err := connected(false, r, "fin-ack-dropped")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Client, false, "-A", "INPUT", "-p", "tcp", "--sport", "80", "-j", "DROP"); err != nil {
		return err
	}
	if err := c.C.Close(); err != nil {
		return err
	}
	if err := c.S.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.S.WaitState(r.Ctx, r.wait(), tcpCloseWait); err != nil {
		return err
	}
	r.Expect(c, "FIN_WAIT_1", "CLOSE_WAIT")
	r.atLeast(3, "client FINs (original + retransmissions)", func(p Packet) bool { return fromClient(p) && p.Has(FlagFIN) })
	r.Check(func(info *CaptureInfo) error {
		fins := filter(info, func(p Packet) bool { return fromClient(p) && p.Has(FlagFIN) })
		acks := filter(info, func(p Packet) bool { return fromServer(p) && len(fins) > 0 && p.Ack == fins[0].Seq+1 })
		if len(acks) < 2 {
			return fmt.Errorf("want the server's ACK of the FIN and duplicates, capture has %d", len(acks))
		}
		return nil
	})
	return r.Sleep(900 * time.Millisecond)
}

func lastACKDropped(r *Run) error {
	c, err := connected(false, r, "last-ack-dropped")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if err := c.C.Close(); err != nil {
		return err
	}
	if err := c.S.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.S.WaitState(r.Ctx, r.wait(), tcpCloseWait); err != nil {
		return err
	}
	if err := r.WaitSS(r.Lab.Client, c.CAddr, c.SAddr, "FIN_WAIT_2", r.wait()); err != nil {
		return err
	}
	if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Server, false, "-A", "INPUT", "-p", "tcp", "--dport", "80", "-j", "DROP"); err != nil {
		return err
	}
	if err := c.S.Close(); err != nil {
		return err
	}
	if err := r.WaitSS(r.Lab.Client, c.CAddr, c.SAddr, "TIME_WAIT", r.wait()); err != nil {
		return err
	}
	r.Expect(c, "TIME_WAIT", "LAST_ACK")
	r.atLeast(3, "server FINs (original + retransmissions)", func(p Packet) bool { return fromServer(p) && p.Has(FlagFIN) })
	return r.Sleep(900 * time.Millisecond)
}

// dropOnePureACK drops, in ns's INPUT chain, the first bare ACK (52 bytes: IPv4 + TCP with
// timestamps) of the given port (sport or dport) from now on.
func (r *Run) dropOnePureACK(ns Netns, portFlag string) error {
	_, err := r.Lab.FirewallIn(r.Ctx, ns, false, "-A", "INPUT", "-p", "tcp", portFlag, "80", "--tcp-flags", "ALL", "ACK",
		"-m", "length", "--length", "52", "-m", "statistic", "--mode", "nth", "--every", "100000", "--packet", "0", "-j", "DROP")
	return err
}

func (r *Run) wantDropped(ns Netns, n int) error {
	got, err := r.DropCounts(ns, false, "INPUT")
	if err != nil {
		return err
	}
	if len(got) != 1 || got[0] != n {
		return fmt.Errorf("%s: want %d packet(s) dropped, iptables counted %v", ns.Name, n, got)
	}
	return nil
}

func finACKLostOnce(r *Run) error {
	c, err := connected(false, r, "fin-ack-lost-once")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if _, err := r.Quiesce(r.wait()); err != nil { // no ACK of the exchange still to come
		return err
	}
	if err := r.dropOnePureACK(r.Lab.Client, "--sport"); err != nil {
		return err
	}
	if err := c.C.ShutdownWrite(); err != nil {
		return err
	}
	if err := c.S.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpFinWait2); err != nil {
		return err
	}
	if err := r.wantDropped(r.Lab.Client, 1); err != nil {
		return err
	}
	r.Expect(c, "FIN_WAIT_2", "CLOSE_WAIT")
	r.atLeast(2, "client FINs (original + retransmission)", func(p Packet) bool { return fromClient(p) && p.Has(FlagFIN) })
	return nil
}

func lastACKLostOnce(r *Run) error {
	c, err := connected(false, r, "last-ack-lost-once")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if err := c.C.Close(); err != nil {
		return err
	}
	if err := c.S.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := r.WaitSS(r.Lab.Client, c.CAddr, c.SAddr, "FIN_WAIT_2", r.wait()); err != nil {
		return err
	}
	if err := r.dropOnePureACK(r.Lab.Server, "--dport"); err != nil {
		return err
	}
	if err := c.S.ShutdownWrite(); err != nil { // FIN; the descriptor stays so its state can be read
		return err
	}
	if err := c.S.WaitState(r.Ctx, r.wait(), tcpClose); err != nil {
		return err
	}
	if err := r.wantDropped(r.Lab.Server, 1); err != nil {
		return err
	}
	r.Expect(c, "TIME_WAIT", "CLOSED")
	r.atLeast(2, "server FINs (original + retransmission)", func(p Packet) bool { return fromServer(p) && p.Has(FlagFIN) })
	return nil
}

func serverFINDropped(r *Run) error {
	c, err := connected(false, r, "server-fin-dropped")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Client, false, "-A", "INPUT", "-p", "tcp", "--sport", "80", "--tcp-flags", "FIN", "FIN", "-j", "DROP"); err != nil {
		return err
	}
	if err := c.S.Close(); err != nil {
		return err
	}
	r.Expect(c, "ESTABLISHED", "FIN_WAIT_1")
	r.atLeast(3, "server FINs (original + retransmissions)", func(p Packet) bool { return fromServer(p) && p.Has(FlagFIN) })
	return r.Sleep(900 * time.Millisecond)
}

func dataLost(r *Run) error {
	l, err := r.Listen(false, 80)
	if err != nil {
		return err
	}
	// -m length matches the IP packet length: 52 bytes is a bare ACK with timestamps; SYNs
	// (60 bytes with options) are excluded.
	if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Server, false, "-A", "INPUT", "-p", "tcp", "--dport", "80", "--tcp-flags", "SYN", "NONE", "-m", "length", "--length", "53:65535",
		"-m", "statistic", "--mode", "nth", "--every", "100000", "--packet", "0", "-j", "DROP"); err != nil {
		return err
	}
	if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Client, false, "-A", "INPUT", "-p", "tcp", "--sport", "80", "--tcp-flags", "SYN", "NONE", "-m", "length", "--length", "53:65535",
		"-m", "statistic", "--mode", "nth", "--every", "100000", "--packet", "2", "-j", "DROP"); err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	c, err := r.Connect(false, 80, l, "data-lost")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, body(20000)); err != nil {
		return err
	}
	if err := r.Snapshot("request and answer delivered after retransmissions", W(c, "ESTABLISHED", "ESTABLISHED")); err != nil {
		return err
	}
	for _, x := range []struct {
		ns   Netns
		want string
	}{{r.Lab.Server, "request"}, {r.Lab.Client, "answer segment"}} {
		n, err := r.DropCounts(x.ns, false, "INPUT")
		if err != nil {
			return err
		}
		if len(n) != 1 || n[0] != 1 {
			return fmt.Errorf("%s: want exactly one dropped %s, iptables counted %v", x.ns.Name, x.want, n)
		}
	}
	retransmitted := func(from func(Packet) bool) func(*CaptureInfo) error {
		return func(info *CaptureInfo) error {
			seen := map[uint32]bool{}
			for _, p := range filter(info, func(p Packet) bool { return from(p) && p.PayloadLen > 0 }) {
				if seen[p.Seq] {
					return nil
				}
				seen[p.Seq] = true
			}
			return errors.New("no data segment was retransmitted")
		}
	}
	r.Check(retransmitted(fromClient))
	r.Check(retransmitted(fromServer))
	return r.CloseClientFirst(c)
}

func simultaneousOpen(r *Run) error {
	h, err := r.Lab.StartHolderMatch(0, 2, 2*time.Second, "SYN", tcpSYNOnly)
	if err != nil {
		return err
	}
	if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-p", "tcp", "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"); err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	ca, sa := netip.AddrPortFrom(ClientV4, 40000), netip.AddrPortFrom(ServerV4, 40001)
	c := &Conn{What: "simultaneous-open", CAddr: ca, SAddr: sa}
	cs, err := r.Lab.Client.NewSock(ca.Addr(), "client "+c.String())
	if err != nil {
		return err
	}
	c.C = r.Lab.Track(cs)
	ss, err := r.Lab.Server.NewSock(sa.Addr(), "server "+c.String())
	if err != nil {
		return err
	}
	c.S = r.Lab.Track(ss)
	r.AddConn(c)
	for _, x := range []struct {
		s          *Sock
		self, peer netip.AddrPort
	}{{cs, ca, sa}, {ss, sa, ca}} {
		if err := x.s.SetInt(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			return err
		}
		if err := x.s.Bind(x.self); err != nil {
			return err
		}
	}
	if err := cs.Connect(sa); err != nil {
		return err
	}
	if err := ss.Connect(ca); err != nil {
		return err
	}
	if err := waitFor(r.Ctx, r.wait(), "both SYNs held and released", func() (bool, error) { return h.Released(), nil }); err != nil {
		return err
	}
	for _, e := range h.Events() {
		r.Note("router SYN holder: %s", e)
	}
	for _, s := range []*Sock{cs, ss} {
		if err := s.WaitState(r.Ctx, r.wait(), tcpEstablished); err != nil {
			return err
		}
	}
	if err := r.Exchange(c, "hello from the client side\n", "hello from the server side\n"); err != nil {
		return err
	}
	if err := r.Snapshot("both ESTABLISHED after the crossing SYNs and SYN-ACKs", W(c, "ESTABLISHED", "ESTABLISHED")); err != nil {
		return err
	}
	r.Check(func(info *CaptureInfo) error {
		syns := filter(info, isSYN)
		if len(syns) != 2 || !fromClient(syns[0]) || !fromServer(syns[1]) {
			return fmt.Errorf("want a SYN from the client then one from the server, capture has %v", syns)
		}
		// The server's SYN must have left before the client's SYN arrived: it acknowledges nothing
		// and precedes any SYN-ACK on the tap.
		if sa := filter(info, isSYNACK); len(sa) != 2 || sa[0].N < syns[1].N {
			return fmt.Errorf("want two SYN-ACKs after both SYNs, capture has %v", sa)
		}
		return nil
	})
	return r.CloseClientFirst(c)
}

func reuseAfterServerTW(r *Run) error {
	l, err := r.Listen(false, 80)
	if err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	a, err := r.Connect(false, 80, l, "first", ReuseAddr())
	if err != nil {
		return err
	}
	if err := r.Exchange(a, httpReq, httpResp); err != nil {
		return err
	}
	if err := r.CloseServerFirst(a); err != nil {
		return err
	}
	if err := r.Snapshot("first connection closed server-first: server TIME_WAIT", W(a, "CLOSED", "TIME_WAIT")); err != nil {
		return err
	}
	b, err := r.Connect(false, 80, l, "second", ReuseAddr(), BindTo(a.CAddr))
	if err != nil {
		return err
	}
	if err := r.Exchange(b, httpReq, httpResp); err != nil {
		return err
	}
	r.Expect(a, "CLOSED", "CLOSED")
	r.Expect(b, "ESTABLISHED", "ESTABLISHED")
	r.atLeast(2, "SYNs from the same port", func(p Packet) bool { return isSYN(p) && p.Src == a.CAddr })
	return nil
}

func reuseAfterClientTW(r *Run) error {
	if err := r.Lab.Client.Sysctl("net.ipv4.tcp_tw_reuse", "1"); err != nil {
		return err
	}
	l, err := r.Listen(false, 80)
	if err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	a, err := r.Connect(false, 80, l, "first", ReuseAddr())
	if err != nil {
		return err
	}
	if err := r.Exchange(a, httpReq, httpResp); err != nil {
		return err
	}
	if err := r.CloseClientFirst(a); err != nil {
		return err
	}
	if err := r.WaitSS(r.Lab.Client, a.CAddr, a.SAddr, "TIME_WAIT", r.wait()); err != nil {
		return err
	}
	t0 := time.Now()
	if err := r.Snapshot("first connection closed client-first: client TIME_WAIT", W(a, "TIME_WAIT", "CLOSED")); err != nil {
		return err
	}
	// tcp_tw_reuse_delay: a TIME_WAIT socket is recycled 1 s after its last timestamp.
	if err := r.Sleep(1100*time.Millisecond - time.Since(t0)); err != nil {
		return err
	}
	b, err := r.Connect(false, 80, l, "second", ReuseAddr(), BindTo(a.CAddr))
	if err != nil {
		return err
	}
	if err := r.Exchange(b, httpReq, httpResp); err != nil {
		return err
	}
	r.Expect(a, "CLOSED", "CLOSED")
	r.Expect(b, "ESTABLISHED", "ESTABLISHED")
	r.atLeast(2, "SYNs from the same port", func(p Packet) bool { return isSYN(p) && p.Src == a.CAddr })
	return nil
}

func reuseAfterRST(r *Run) error {
	l, err := r.Listen(false, 80)
	if err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	a, err := r.Connect(false, 80, l, "first", ReuseAddr())
	if err != nil {
		return err
	}
	if err := r.Exchange(a, httpReq, httpResp); err != nil {
		return err
	}
	if err := r.Abort(a, true); err != nil {
		return err
	}
	b, err := r.Connect(false, 80, l, "second", ReuseAddr(), BindTo(a.CAddr))
	if err != nil {
		return err
	}
	if err := r.Exchange(b, httpReq, httpResp); err != nil {
		return err
	}
	r.Expect(a, "CLOSED", "CLOSED")
	r.Expect(b, "ESTABLISHED", "ESTABLISHED")
	r.atLeast(1, "RST from the client", func(p Packet) bool { return fromClient(p) && p.Has(FlagRST) })
	r.atLeast(2, "SYNs from the same port", func(p Packet) bool { return isSYN(p) && p.Src == a.CAddr })
	return nil
}

func fastOpen(r *Run) error {
	for _, ns := range []Netns{r.Lab.Client, r.Lab.Server} {
		if err := ns.Sysctl("net.ipv4.tcp_fastopen", "3"); err != nil {
			return err
		}
	}
	l, err := r.Listen(false, 80, TFOListen(16))
	if err != nil {
		return err
	}
	const stuckPort = 41003
	if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Server, false, "-A", "INPUT", "-p", "tcp", "--dport", "80", "--sport", fmt.Sprint(stuckPort), "!", "--syn", "-j", "DROP"); err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	// 1: no cookie yet: the SYN asks for one, the SYN-ACK brings it.
	a, err := r.Connect(false, 80, l, "cookie-request", TFOConnect())
	if err != nil {
		return err
	}
	if err := r.Exchange(a, httpReq, httpResp); err != nil {
		return err
	}
	if err := r.CloseClientFirst(a); err != nil {
		return err
	}
	// 2: data in the SYN.
	tfo := func(what string, opts ...SockOpt) (*Conn, error) {
		c, err := r.Dial(false, 80, what, append([]SockOpt{TFOConnect()}, opts...)...)
		if err != nil {
			return nil, err
		}
		if err := c.C.Write(r.Ctx, []byte(httpReq)); err != nil { // sends the SYN, with the data
			return nil, err
		}
		s, err := l.Accept(r.Ctx, r.wait(), "server "+c.String())
		if err != nil {
			return nil, err
		}
		c.S = r.Lab.Track(s)
		if s.Peer() != c.CAddr {
			return nil, fmt.Errorf("accepted %s, expected %s", s.Peer(), c.CAddr)
		}
		if _, err := c.S.Read(r.Ctx, len(httpReq), r.wait()); err != nil {
			return nil, err
		}
		if err := c.C.WaitState(r.Ctx, r.wait(), tcpEstablished); err != nil {
			return nil, err
		}
		return c, nil
	}
	b, err := tfo("data-in-syn")
	if err != nil {
		return err
	}
	if err := r.Exchange(b, "", httpResp); err != nil {
		return err
	}
	if err := r.Snapshot("first connection closed, second (data in SYN) established", W(a, "TIME_WAIT", "CLOSED"), W(b, "ESTABLISHED", "ESTABLISHED")); err != nil {
		return err
	}
	// 3: data in the SYN, the handshake's ACK lost: the server accepted the data and stays SYN_RECV.
	c, err := tfo("data-in-syn-ack-lost", BindTo(netip.AddrPortFrom(ClientV4, stuckPort)))
	if err != nil {
		return err
	}
	if err := c.S.WaitState(r.Ctx, 0, tcpSynRecv); err != nil {
		return err
	}
	t0 := time.Now()
	r.Expect(a, "TIME_WAIT", "CLOSED")
	r.Expect(b, "ESTABLISHED", "ESTABLISHED")
	r.Expect(c, "ESTABLISHED", "SYN_RECEIVED")
	r.atLeast(2, "SYNs with data from the client", func(p Packet) bool { return isSYN(p) && p.PayloadLen > 0 })
	r.Check(func(info *CaptureInfo) error {
		for _, s := range filter(info, func(p Packet) bool { return isSYN(p) && p.PayloadLen > 0 }) {
			ok := false
			for _, sa := range filter(info, isSYNACK) {
				if sa.Dst == s.Src && sa.Ack == s.Seq+1+uint32(s.PayloadLen) {
					ok = true
				}
			}
			if !ok {
				return fmt.Errorf("no SYN-ACK acknowledges the data of %s", s)
			}
		}
		return nil
	})
	r.atLeast(1, "SYN-ACK retransmission to the stuck connection", func(p Packet) bool {
		return isSYNACK(p) && p.Dst.Port() == stuckPort && p.Time.Sub(t0) > 500*time.Millisecond
	})
	return r.Sleep(1400*time.Millisecond - time.Since(t0))
}

// forgedRST injects RSTs from the router in the client's name towards the server (toClient:
// in the server's name towards the client) on three connections: out of the window, in the
// window but not exact, exact.
func forgedRST(toClient bool) func(*Run) error {
	return func(r *Run) error {
		l, err := r.Listen(false, 80)
		if err != nil {
			return err
		}
		if err := r.StartCapture(); err != nil {
			return err
		}
		var cs []*Conn
		for _, what := range []string{"rst-out-of-window", "rst-in-window", "rst-exact"} {
			c, err := r.Connect(false, 80, l, what)
			if err != nil {
				return err
			}
			if err := r.Exchange(c, httpReq, httpResp); err != nil {
				return err
			}
			cs = append(cs, c)
		}
		const E = "ESTABLISHED"
		if err := r.Snapshot("three connections established", W(cs[0], E, E), W(cs[1], E, E), W(cs[2], E, E)); err != nil {
			return err
		}
		victim, named := "server", "client"
		if toClient {
			victim, named = "client", "server"
		}
		// inject sends a RST in the name of named towards victim, at named's next sequence
		// number plus off (with an ACK of the victim's next one when withACK).
		inject := func(c *Conn, off uint32, withACK bool) (uint32, error) {
			src, dst := c.CAddr, c.SAddr
			if toClient {
				src, dst = dst, src
			}
			nxt, _, err := r.NextSeq(src, dst)
			if err != nil {
				return 0, err
			}
			var ack uint32
			flags := uint8(FlagRST)
			if withACK {
				if ack, _, err = r.NextSeq(dst, src); err != nil {
					return 0, err
				}
				flags |= FlagACK
			}
			if _, err := r.Lab.InjectTCP(src, dst, nxt+off, ack, flags, 0); err != nil {
				return 0, err
			}
			r.Note("%s: injected RST %s > %s seq %d (RCV.NXT %d + %d) ack %d", c.What, src, dst, nxt+off, nxt, off, ack)
			return nxt + off, nil
		}
		// Out of the window (the receive window is about 64 KB): silently dropped.
		seqA, err := inject(cs[0], 1<<30, false)
		if err != nil {
			return err
		}
		if err := r.Snapshot("after an out-of-window RST to the "+victim+" of rst-out-of-window: ignored", W(cs[0], E, E), W(cs[1], E, E), W(cs[2], E, E)); err != nil {
			return err
		}
		// In the window but not RCV.NXT: RFC 5961 challenge ACK, the connection stays.
		seqB, err := inject(cs[1], 1000, false)
		if err != nil {
			return err
		}
		if err := r.Snapshot("after an in-window RST to the "+victim+" of rst-in-window: challenge ACK, still established", W(cs[0], E, E), W(cs[1], E, E), W(cs[2], E, E)); err != nil {
			return err
		}
		// Exactly RCV.NXT: accepted.
		seqC, err := inject(cs[2], 0, true)
		if err != nil {
			return err
		}
		reset, cState, sState := cs[2].S, E, "CLOSED"
		if toClient {
			reset, cState, sState = cs[2].C, "CLOSED", E
		}
		if err := reset.WaitState(r.Ctx, r.wait(), tcpClose); err != nil {
			return err
		}
		if err := r.Snapshot("after an exact RST to the "+victim+" of rst-exact: "+victim+" socket reset", W(cs[0], E, E), W(cs[1], E, E), W(cs[2], cState, sState)); err != nil {
			return err
		}
		r.Expect(cs[0], E, E)
		r.Expect(cs[1], E, E)
		r.Expect(cs[2], cState, sState)
		r.Check(func(info *CaptureInfo) error {
			for i, seq := range []uint32{seqA, seqB, seqC} {
				c := cs[i]
				from, to := c.CAddr, c.SAddr
				if toClient {
					from, to = to, from
				}
				rst := filter(info, func(p Packet) bool { return p.Src == from && p.Has(FlagRST) && p.Seq == seq })
				if len(rst) != 1 {
					return fmt.Errorf("%s: want the injected RST (in the %s's name) on the tap, found %d", c.What, named, len(rst))
				}
				after := filter(info, func(p Packet) bool { return p.Src == to && p.Dst == from && p.N > rst[0].N })
				if i == 1 && (len(after) != 1 || after[0].Flags != FlagACK) {
					return fmt.Errorf("%s: want exactly one challenge ACK from the %s after the RST, capture has %v", c.What, victim, after)
				}
				if i != 1 && len(after) != 0 {
					return fmt.Errorf("%s: the %s answered the RST: %v", c.What, victim, after)
				}
			}
			return nil
		})
		return nil
	}
}

// randomLoss: loss after the tap in both directions. At a router tap (rc) the client's packets
// are seen before the router's FORWARD chain and the server's after it, so client→server loss
// is a FORWARD rule and server→client loss an INPUT rule in the client. At an endpoint tap the
// loss is in the path (the router's FORWARD chain, both ways): the host's own packets are
// captured and then lost, the peer's lost packets never reach the host's tap.
func randomLoss(r *Run) error {
	r.Wait = 20 * time.Second
	const prob = "0.12"
	fates := []struct {
		what string
		fate func(c *Conn) error
	}{
		{"download-close-client-first", func(c *Conn) error {
			if err := r.Exchange(c, httpReq, body(30000)); err != nil {
				return err
			}
			return r.CloseClientFirst(c)
		}},
		{"upload-close-server-first", func(c *Conn) error {
			if err := r.Exchange(c, body(20000), httpResp); err != nil {
				return err
			}
			return r.CloseServerFirst(c)
		}},
		{"close-server-first", func(c *Conn) error {
			if err := r.Exchange(c, httpReq, httpResp); err != nil {
				return err
			}
			return r.CloseServerFirst(c)
		}},
		{"close-client-first", func(c *Conn) error {
			if err := r.Exchange(c, httpReq, httpResp); err != nil {
				return err
			}
			return r.CloseClientFirst(c)
		}},
		{"half-close", r.HalfClose},
		{"half-close-download", func(c *Conn) error {
			if err := c.C.Write(r.Ctx, []byte(httpReq)); err != nil {
				return err
			}
			if err := c.C.ShutdownWrite(); err != nil {
				return err
			}
			if err := c.S.ReadEOF(r.Ctx, r.wait()); err != nil {
				return err
			}
			if err := r.Exchange(c, "", body(12000)); err != nil {
				return err
			}
			if err := c.C.WaitState(r.Ctx, r.wait(), tcpFinWait2); err != nil {
				return err
			}
			r.Expect(c, "FIN_WAIT_2", "CLOSE_WAIT")
			return nil
		}},
		{"server-closes", r.ServerClosesClientNever},
		{"idle", func(c *Conn) error {
			if err := r.Exchange(c, httpReq, httpResp); err != nil {
				return err
			}
			r.Expect(c, "ESTABLISHED", "ESTABLISHED")
			return nil
		}},
	}
	ls := make([]*Sock, len(fates))
	for i := range fates {
		l, err := r.Listen(false, uint16(8001+i))
		if err != nil {
			return err
		}
		ls[i] = l
	}
	type rule struct {
		ns    Netns
		chain string
		args  []string
	}
	stat := []string{"-m", "statistic", "--mode", "random", "--probability", prob, "-j", "DROP"}
	var rules []rule
	if r.Tap == TapClient || r.Tap == TapServer {
		rules = []rule{
			{r.Lab.Router, "FORWARD", append([]string{"-i", RouterClientIface, "-p", "tcp"}, stat...)},
			{r.Lab.Router, "FORWARD", append([]string{"-i", RouterServerIface, "-p", "tcp"}, stat...)},
		}
	} else {
		rules = []rule{
			{r.Lab.Router, "FORWARD", append([]string{"-i", RouterClientIface, "-p", "tcp"}, stat...)},
			{r.Lab.Client, "INPUT", append([]string{"-p", "tcp", "--sport", "8001:8099"}, stat...)},
		}
	}
	for _, x := range rules {
		if _, err := r.Lab.FirewallIn(r.Ctx, x.ns, false, append([]string{"-A", x.chain}, x.args...)...); err != nil {
			return err
		}
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(fates))
	for i, f := range fates {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := r.Connect(false, uint16(8001+i), ls[i], f.what)
			if err == nil {
				err = f.fate(c)
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s: %w", f.what, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var drops []string
	total := 0
	for _, x := range rules {
		n, err := r.DropCounts(x.ns, false, x.chain)
		if err != nil {
			return err
		}
		if _, err := r.Lab.FirewallIn(r.Ctx, x.ns, false, append([]string{"-D", x.chain}, x.args...)...); err != nil {
			return err
		}
		s := 0
		for _, v := range n {
			s += v
		}
		if s == 0 {
			return fmt.Errorf("no packet was dropped by %s %s: rerun", x.ns.Name, x.chain)
		}
		total += s
		drops = append(drops, fmt.Sprintf("%s %s dropped %d", x.ns.Name[len(x.ns.Name)-1:], x.chain, s))
	}
	r.Note("random loss (probability %s per rule): %v", prob, drops)
	// Loss lifted: let every retransmission complete so the final states are settled.
	if _, err := r.Quiesce(20 * time.Second); err != nil {
		return err
	}
	return nil
}

func gapDataPlay(r *Run) error {
	c, err := connected(false, r, "gap-data")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, body(8000)); err != nil {
		return err
	}
	return r.CloseClientFirst(c)
}

func spanMix(r *Run) error {
	l, err := r.Listen(false, 80)
	if err != nil {
		return err
	}
	if _, err := r.Listen(false, 8081); err != nil {
		return err
	}
	if err := r.DropSYNs(false, 8081); err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	t0 := time.Now()
	d, err := r.Dial(false, 8081, "syn-dropped")
	if err != nil {
		return err
	}
	r.Expect(d, "SYN_SENT", "CLOSED")
	a, err := r.Connect(false, 80, l, "close-client-first")
	if err != nil {
		return err
	}
	if err := r.Exchange(a, httpReq, body(10000)); err != nil {
		return err
	}
	if err := r.CloseClientFirst(a); err != nil {
		return err
	}
	b, err := r.Connect(false, 80, l, "half-close")
	if err != nil {
		return err
	}
	if err := r.HalfClose(b); err != nil {
		return err
	}
	if _, err := r.Refused(false, 81, "refused"); err != nil {
		return err
	}
	if time.Since(t0) > 700*time.Millisecond {
		return errors.New("too slow: the dropped SYN's retransmission (at 1 s) could race the snapshot")
	}
	return nil
}

func lifecycleAt(r *Run) error {
	c, err := connected(false, r, "lifecycle")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if err := r.Snapshot("request and answer exchanged", W(c, "ESTABLISHED", "ESTABLISHED")); err != nil {
		return err
	}
	if err := c.C.ShutdownWrite(); err != nil {
		return err
	}
	if err := c.S.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpFinWait2); err != nil {
		return err
	}
	if err := r.Snapshot("client shutdown(SHUT_WR): half-closed", W(c, "FIN_WAIT_2", "CLOSE_WAIT")); err != nil {
		return err
	}
	if err := r.Exchange(c, "", httpResp); err != nil {
		return err
	}
	if err := c.S.Close(); err != nil {
		return err
	}
	if err := c.C.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := r.WaitSS(r.Lab.Client, c.CAddr, c.SAddr, "TIME_WAIT", r.wait()); err != nil {
		return err
	}
	if err := r.Snapshot("server answered and closed: client TIME_WAIT", W(c, "TIME_WAIT", "CLOSED")); err != nil {
		return err
	}
	r.Expect(c, "TIME_WAIT", "CLOSED")
	return nil
}

// timerMargin: how long after a kernel timer ran out the slow scenarios take their snapshot.
const timerMargin = 5 * time.Second

func synTimeout(r *Run) error {
	r.FinalAt = true
	if _, err := r.Listen(false, 80); err != nil {
		return err
	}
	if err := r.DropSYNs(false, 80); err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	c, err := r.Dial(false, 80, "syn-timeout")
	if err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, 300*time.Second, tcpClose); err != nil {
		return err
	}
	gaveUp := time.Now()
	if err := c.C.SoError(); !errors.Is(err, syscall.ETIMEDOUT) {
		return fmt.Errorf("connect error %v, want ETIMEDOUT", err)
	}
	r.Expect(c, "CLOSED", "CLOSED")
	r.Check(func(info *CaptureInfo) error {
		syns := filter(info, isSYN)
		r.Note("SYNs at %s s; the kernel gave up %.3f s after the first (%.3f s after the last); snapshot %v later", sinceStart(syns),
			gaveUp.Sub(syns[0].Time).Seconds(), gaveUp.Sub(syns[len(syns)-1].Time).Seconds(), timerMargin)
		// SYN_SENT gives up after tcp_syn_retries + tcp_syn_linear_timeouts retransmissions.
		if len(syns) != 11 {
			return fmt.Errorf("want 11 SYNs (1 + tcp_syn_retries 6 + tcp_syn_linear_timeouts 4), capture has %d", len(syns))
		}
		return nil
	})
	// Timer-wheel slack makes the exact moment vary by a second or so: look 5 s later.
	if err := r.Sleep(timerMargin); err != nil {
		return err
	}
	return r.Snapshot("5 s after the client gave up", W(c, "CLOSED", "CLOSED"))
}

func synackTimeout(r *Run) error {
	r.FinalAt = true
	if _, err := r.Listen(false, 80); err != nil {
		return err
	}
	if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-i", RouterClientIface, "-p", "tcp", "--dport", "80", "!", "--syn", "-j", "DROP"); err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	c, err := r.Dial(false, 80, "synack-timeout")
	if err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpEstablished); err != nil {
		return err
	}
	if err := r.WaitSS(r.Lab.Server, c.SAddr, c.CAddr, "SYN_RECEIVED", r.wait()); err != nil {
		return err
	}
	if err := r.WaitSS(r.Lab.Server, c.SAddr, c.CAddr, "CLOSED", 120*time.Second); err != nil {
		return err
	}
	gaveUp := time.Now()
	r.Expect(c, "ESTABLISHED", "CLOSED")
	r.Check(func(info *CaptureInfo) error {
		sa := filter(info, isSYNACK)
		r.Note("SYN-ACKs at %s s; the request was gone %.3f s after the first (%.3f s after the last); snapshot %v later", sinceStart(sa),
			gaveUp.Sub(sa[0].Time).Seconds(), gaveUp.Sub(sa[len(sa)-1].Time).Seconds(), timerMargin)
		if len(sa) != 6 {
			return fmt.Errorf("want 6 SYN-ACKs (tcp_synack_retries=5), capture has %d", len(sa))
		}
		return nil
	})
	if err := r.Sleep(timerMargin); err != nil {
		return err
	}
	return r.Snapshot("5 s after the server gave up on the request", W(c, "ESTABLISHED", "CLOSED"))
}
