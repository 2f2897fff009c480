package kernellab

import (
	"fmt"
	"time"
)

// Issue 14: where real networks lie. Middleboxes forge packets in an endpoint's name, sockets
// die of their timers without a packet, packets are still on a long path when the capture (or
// --at) asks, a client comes back on its old port, a FIN reaches the tap late. The router
// namespace plays the middlebox.

// issue14Scenarios returns the scenarios of issue 14, in recording order.
func issue14Scenarios() []*Scenario {
	rejC := &Scenario{Name: "reject-reset-to-client", Play: rejectReset(true, false),
		Description: "IPv4: after request and answer, the router's FORWARD chain starts rejecting the client's packets with `REJECT --reject-with tcp-reset`: the client's next data is answered by a RST in the server's name (sent by the router, TTL 64, no timestamps); the client's socket is reset, the server never hears of it and stays ESTABLISHED (half-open)."}
	bhr := &Scenario{Name: "blackhole-retransmit", Play: blackholeRetransmit,
		Description: "IPv4, net.ipv4.tcp_retries2=3 in the client: after request and answer the router drops everything after the tap; the client's next data is retransmitted with exponential backoff until its kernel gives up (no packet marks it): client CLOSED, server ESTABLISHED; snapshot 1 s after the client gave up, compared with --at."}
	lp := &Scenario{Name: "long-path", Play: longPath,
		Description: "IPv4: the router delays every TCP packet by 500 ms each way (NFQUEUE), so the tap (client side of the router) is 500 ms from the server. At-snapshot 1 is taken while the handshake's ACK is on its way (client ESTABLISHED, server SYN_RECEIVED), 2 while the client's ACK of the server's FIN is (server FIN_WAIT_1, client CLOSE_WAIT); at the end the client aborts (SO_LINGER 0) and the capture stops while its RST is still on the path (client CLOSED, server FIN_WAIT_2)."}
	return []*Scenario{
		// 1. Forged in an endpoint's name.
		rejC,
		{Name: "reject-reset-to-server", Play: rejectReset(false, false), Tap: TapRouterServer,
			Description: "IPv4, tap between router and server: after request and answer, the router rejects the server's packets with `REJECT --reject-with tcp-reset`: the server's next data is answered by a RST in the client's name (sent by the router); the server's socket is reset, the client stays ESTABLISHED (half-open)."},
		rejC.WithTap(TapClient),
		{Name: "reject-reset-to-client-v6", Play: rejectReset(true, true),
			Description: "IPv6: as reject-reset-to-client, with ip6tables: the RST in the server's name comes from the router (hop limit 64 at the tap, where the server's packets arrive with 63); the client is reset, the server stays ESTABLISHED (half-open)."},
		{Name: "conntrack-expired", Play: conntrackExpired,
			Description: "IPv4: the router is a stateful firewall (conntrack, nf_conntrack_tcp_loose=0, established timeout 2 s, INVALID dropped); the connection idles 2.5 s, its entry expires, and the client's next data is dropped as INVALID after the tap; the client (tcp_retries2=3) retransmits until it gives up: client CLOSED, server ESTABLISHED; compared with --at 1 s after."},
		{Name: "ips-reset", Play: ipsReset,
			Description: "IPv4: two established connections; an IPS in the router injects exact-sequence RSTs towards both ends of the first (the one towards the client passes the tap, the one towards the server leaves by the router's other interface); both ends of the first are reset, the second is left alone (ESTABLISHED both)."},
		{Name: "forged-rst-to-client", Play: forgedRST(true),
			Description: "IPv4: three established connections; the router injects a RST towards the client in the server's name: out of the window on the first (ignored), in the window but not at RCV.NXT on the second (the client sends a challenge ACK), exactly at RCV.NXT on the third (the client's socket is reset; the server still ESTABLISHED); at-snapshots before and after each."},
		// 2. Sockets that die without a packet.
		bhr,
		bhr.WithTap(TapClient),
		{Name: "keepalive-blackhole", Play: keepaliveBlackhole,
			Description: "IPv4: an idle connection whose client has SO_KEEPALIVE (TCP_KEEPIDLE 1 s, TCP_KEEPINTVL 1 s, TCP_KEEPCNT 2); the router drops everything after the tap, so the probes go unanswered and the client's kernel gives up, sending a RST that is dropped too: client CLOSED, server ESTABLISHED; compared with --at 1 s after."},
		{Name: "zero-window-blackhole", Play: zeroWindowBlackhole,
			Description: "IPv4, net.ipv4.tcp_retries2=3 in the client: the server (small SO_RCVBUF) never reads, the client fills its window and sends zero-window probes that the server answers; then the router drops everything after the tap, the probes go unanswered and the client's persist timer gives up: client CLOSED, server ESTABLISHED; @1 1 s later, compared with --at 4 s later."},
		// 3. Packets still in flight.
		lp,
		lp.WithTap(TapClient),
		// 4. A client that comes back on its old port.
		{Name: "reconnect-same-port", Play: reconnectSamePort,
			Description: "IPv4: the client aborts (SO_LINGER 0) but its RST is dropped in its own OUTPUT chain, so the server keeps the connection ESTABLISHED; the client binds the same port and connects: the server answers the SYN with a challenge ACK, the client answers that with a RST (old connection's sequence number) that resets the server's old socket, the client's SYN retransmitted 1 s later opens the new connection (ESTABLISHED both)."},
		// 5. A FIN the tap saw late.
		{Name: "fin-seen-late", Play: finSeenLate, Tap: TapRouterServer,
			Description: "IPv4, tap between router and server: the client shuts down its side but the router holds its FIN for 300 ms before the tap; meanwhile the server sends data and the client's ACKs, one past the FIN, reach the tap first; then the FIN (and its retransmission): client FIN_WAIT_2, server CLOSE_WAIT."},
		{Name: "crossing-fins-first-lost", Play: crossingFinsFirstLost,
			Description: "IPv4: both ends shut down at once; the router holds the client's FIN 100 ms after the tap and drops the server's first FIN before the tap, so the server gets the client's FIN in FIN_WAIT_1 (CLOSING) and its ACK, one past its unseen FIN, reaches the tap first; its retransmitted FIN then acknowledges the client's: both TIME_WAIT."},
		{Name: "crossing-fins-held", Play: crossingFinsHeld, Tap: TapRouterServer,
			Description: "IPv4, tap between router and server: both ends shut down at the same moment and the router holds every FIN for 300 ms, so each FIN leaves before its sender hears the peer's and the ACKs overtake the FINs: both ends CLOSING -> TIME_WAIT."},
	}
}

// rejectReset: REJECT --reject-with tcp-reset in the router, for the client's packets (toClient:
// the RST goes to the client) or the server's.
func rejectReset(toClient, v6 bool) func(*Run) error {
	return func(r *Run) error {
		c, err := connected(v6, r, "reject")
		if err != nil {
			return err
		}
		if err := r.Exchange(c, httpReq, httpResp); err != nil {
			return err
		}
		in, port, writer, victim := RouterClientIface, "--dport", c.C, c.C
		if !toClient {
			in, port, writer, victim = RouterServerIface, "--sport", c.S, c.S
		}
		if err := r.Lab.Firewall(r.Ctx, v6, "-A", "FORWARD", "-i", in, "-p", "tcp", port, "80", "-j", "REJECT", "--reject-with", "tcp-reset"); err != nil {
			return err
		}
		if err := writer.Write(r.Ctx, []byte("more\n")); err != nil {
			return err
		}
		if err := victim.WaitState(r.Ctx, r.wait(), tcpClose); err != nil {
			return err
		}
		if toClient {
			r.Expect(c, "CLOSED", "ESTABLISHED")
		} else {
			r.Expect(c, "ESTABLISHED", "CLOSED")
		}
		r.atLeast(1, "RST from the router", func(p Packet) bool { return p.Has(FlagRST) })
		return nil
	}
}

// blackhole drops every TCP packet in the router's FORWARD chain, both ways (after a tap on rc).
func (r *Run) blackhole() error {
	return r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-p", "tcp", "-j", "DROP")
}

// afterGiveUp waits for sock's kernel to give up (CLOSED), then a second, and takes the final
// at-snapshot (the tool is compared with --at there).
func (r *Run) afterGiveUp(c *Conn, s *Sock, client, server string) error {
	r.FinalAt = true
	if err := s.WaitState(r.Ctx, 30*time.Second, tcpClose); err != nil {
		return err
	}
	gaveUp := time.Now()
	r.Check(func(info *CaptureInfo) error {
		var last time.Time
		for _, p := range info.TCP {
			if p.Src == c.CAddr || p.Src == c.SAddr {
				last = p.Time
			}
		}
		r.Note("the kernel gave up %.3f s after the connection's last packet on the tap", gaveUp.Sub(last).Seconds())
		return nil
	})
	if err := r.Sleep(time.Second); err != nil {
		return err
	}
	r.Expect(c, client, server)
	return r.Snapshot("1 s after the kernel gave up", W(c, client, server))
}

func blackholeRetransmit(r *Run) error {
	if err := r.Lab.Client.Sysctl("net.ipv4.tcp_retries2", "3"); err != nil {
		return err
	}
	c, err := connected(false, r, "blackhole-retransmit")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if _, err := r.Quiesce(r.wait()); err != nil {
		return err
	}
	if err := r.blackhole(); err != nil {
		return err
	}
	if err := c.C.Write(r.Ctx, []byte("anyone there?\n")); err != nil {
		return err
	}
	r.atLeast(3, "client data segments (original + retransmissions)", func(p Packet) bool { return fromClient(p) && p.PayloadLen > 0 })
	return r.afterGiveUp(c, c.C, "CLOSED", "ESTABLISHED")
}

func conntrackExpired(r *Run) error {
	if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"); err != nil {
		return err
	}
	for _, kv := range [][2]string{{"net.netfilter.nf_conntrack_tcp_loose", "0"}, {"net.netfilter.nf_conntrack_tcp_timeout_established", "2"}} {
		if err := r.Lab.Router.Sysctl(kv[0], kv[1]); err != nil {
			return fmt.Errorf("router sysctl %s (conntrack): %w", kv[0], err)
		}
	}
	if err := r.Lab.Client.Sysctl("net.ipv4.tcp_retries2", "3"); err != nil {
		return err
	}
	c, err := connected(false, r, "conntrack-expired")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if err := r.Sleep(2500 * time.Millisecond); err != nil {
		return err
	}
	if err := c.C.Write(r.Ctx, []byte("still there?\n")); err != nil {
		return err
	}
	r.atLeast(3, "client data segments (original + retransmissions)", func(p Packet) bool { return fromClient(p) && p.PayloadLen > 0 })
	return r.afterGiveUp(c, c.C, "CLOSED", "ESTABLISHED")
}

// inject sends a RST (with ACK) in the name of from towards to, at from's next sequence number
// plus off, as the tap has seen it.
func (r *Run) inject(c *Conn, toClient bool, off uint32) (uint32, error) {
	src, dst := c.CAddr, c.SAddr
	if toClient {
		src, dst = dst, src
	}
	nxt, _, err := r.NextSeq(src, dst)
	if err != nil {
		return 0, err
	}
	ack, _, err := r.NextSeq(dst, src)
	if err != nil {
		return 0, err
	}
	if _, err := r.Lab.InjectTCP(src, dst, nxt+off, ack, FlagRST|FlagACK, 0); err != nil {
		return 0, err
	}
	r.Note("%s: injected RST %s > %s seq %d (next %d + %d) ack %d", c.What, src, dst, nxt+off, nxt, off, ack)
	return nxt + off, nil
}

func ipsReset(r *Run) error {
	l, err := r.Listen(false, 80)
	if err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	a, err := r.Connect(false, 80, l, "reset-by-ips")
	if err != nil {
		return err
	}
	b, err := r.Connect(false, 80, l, "left-alone")
	if err != nil {
		return err
	}
	for _, c := range []*Conn{a, b} {
		if err := r.Exchange(c, httpReq, httpResp); err != nil {
			return err
		}
	}
	if _, err := r.Quiesce(r.wait()); err != nil {
		return err
	}
	if _, err := r.inject(a, false, 0); err != nil {
		return err
	}
	if _, err := r.inject(a, true, 0); err != nil {
		return err
	}
	for _, s := range []*Sock{a.C, a.S} {
		if err := s.WaitState(r.Ctx, r.wait(), tcpClose); err != nil {
			return err
		}
	}
	if err := r.Exchange(b, "after the reset\n", "still here\n"); err != nil {
		return err
	}
	r.Expect(a, "CLOSED", "CLOSED")
	r.Expect(b, "ESTABLISHED", "ESTABLISHED")
	return nil
}

func keepaliveBlackhole(r *Run) error {
	c, err := connected(false, r, "keepalive-blackhole")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if _, err := r.Quiesce(r.wait()); err != nil {
		return err
	}
	if err := r.blackhole(); err != nil {
		return err
	}
	if err := c.C.Keepalive(1, 1, 2); err != nil {
		return err
	}
	r.atLeast(2, "keepalive probes from the client", func(p Packet) bool { return fromClient(p) && p.PayloadLen == 0 && p.Flags == FlagACK })
	return r.afterGiveUp(c, c.C, "CLOSED", "ESTABLISHED")
}

// SnapshotInFlight takes ss in both ends at once, while packets may be on their way (no
// quiescence): the truth for `tcpstate --at` at an instant a long path still carries packets.
func (r *Run) SnapshotInFlight(label string, intended ...Want) error {
	return r.takeSnapshot(label, time.Time{}, false, intended...)
}

const longDelay = 500 * time.Millisecond

func longPath(r *Run) error {
	if _, err := r.Lab.StartDelayLine(1, longDelay, "TCP packet", nil); err != nil {
		return err
	}
	if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-p", "tcp", "-j", "NFQUEUE", "--queue-num", "1"); err != nil {
		return err
	}
	r.Wait = 5 * time.Second
	l, err := r.Listen(false, 80)
	if err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	c, err := r.Dial(false, 80, "long-path")
	if err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpEstablished); err != nil {
		return err
	}
	// The handshake's ACK left now; it reaches the server 500 ms later.
	if err := r.Sleep(150 * time.Millisecond); err != nil {
		return err
	}
	if err := r.SnapshotInFlight("the handshake's ACK still on the path", W(c, "ESTABLISHED", "SYN_RECEIVED")); err != nil {
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
	if err := c.S.ShutdownWrite(); err != nil {
		return err
	}
	if err := c.C.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpCloseWait); err != nil {
		return err
	}
	// The client's ACK of the FIN left now; it reaches the server 500 ms later.
	if err := r.Sleep(150 * time.Millisecond); err != nil {
		return err
	}
	if err := r.SnapshotInFlight("the client's ACK of the server's FIN still on the path", W(c, "CLOSE_WAIT", "FIN_WAIT_1")); err != nil {
		return err
	}
	if err := r.WaitSS(r.Lab.Server, c.SAddr, c.CAddr, "FIN_WAIT_2", r.wait()); err != nil {
		return err
	}
	if err := r.Sleep(100 * time.Millisecond); err != nil {
		return err
	}
	if err := c.C.Linger0(); err != nil {
		return err
	}
	if err := c.C.Close(); err != nil {
		return err
	}
	// The recorder stops the capture after Settle and takes ss at once: the RST is still on
	// the path then (the intent check fails the recording otherwise).
	r.Settle = 100 * time.Millisecond
	r.Expect(c, "CLOSED", "FIN_WAIT_2")
	return nil
}

func reconnectSamePort(r *Run) error {
	l, err := r.Listen(false, 80)
	if err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	c, err := r.Connect(false, 80, l, "vanished", ReuseAddr())
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if _, err := r.Quiesce(r.wait()); err != nil {
		return err
	}
	rule := []string{"OUTPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "DROP"}
	if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Client, false, append([]string{"-A"}, rule...)...); err != nil {
		return err
	}
	if err := c.C.Linger0(); err != nil {
		return err
	}
	if err := c.C.Close(); err != nil {
		return err
	}
	if _, err := r.Lab.FirewallIn(r.Ctx, r.Lab.Client, false, append([]string{"-D"}, rule...)...); err != nil {
		return err
	}
	// No at-snapshot here: nothing on the wire says yet that the client's socket is gone.
	if err := r.WaitSS(r.Lab.Server, c.SAddr, c.CAddr, "ESTABLISHED", r.wait()); err != nil {
		return err
	}
	r.Wait = 5 * time.Second
	b, err := r.Connect(false, 80, l, "came-back", ReuseAddr(), BindTo(c.CAddr))
	if err != nil {
		return err
	}
	if err := r.Exchange(b, httpReq, httpResp); err != nil {
		return err
	}
	r.Expect(c, "CLOSED", "CLOSED")
	r.Expect(b, "ESTABLISHED", "ESTABLISHED")
	r.atLeast(1, "RST from the client", func(p Packet) bool { return fromClient(p) && p.Has(FlagRST) })
	r.atLeast(2, "SYNs from the same port", func(p Packet) bool { return isSYN(p) && p.Src == c.CAddr })
	return nil
}

// holdFINs delays FINs (of both directions) in the router by d; other packets pass at once.
func (r *Run) holdFINs(d time.Duration) error {
	if _, err := r.Lab.StartDelayLine(2, d, "FIN", tcpFIN); err != nil {
		return err
	}
	return r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-p", "tcp", "-j", "NFQUEUE", "--queue-num", "2")
}

func finSeenLate(r *Run) error {
	if err := r.holdFINs(300 * time.Millisecond); err != nil {
		return err
	}
	c, err := connected(false, r, "fin-seen-late")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, ""); err != nil {
		return err
	}
	if err := c.C.ShutdownWrite(); err != nil {
		return err
	}
	if err := r.Sleep(20 * time.Millisecond); err != nil {
		return err
	}
	if err := r.Exchange(c, "", httpResp); err != nil {
		return err
	}
	if err := c.S.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpFinWait2); err != nil {
		return err
	}
	if err := c.S.WaitState(r.Ctx, r.wait(), tcpCloseWait); err != nil {
		return err
	}
	r.Expect(c, "FIN_WAIT_2", "CLOSE_WAIT")
	r.Check(segmentPastFINFirst("client", fromClient))
	return r.Sleep(350 * time.Millisecond)
}

func crossingFinsHeld(r *Run) error {
	if err := r.holdFINs(300 * time.Millisecond); err != nil {
		return err
	}
	c, err := r.closeBothAtOnce("crossing-fins-held")
	if err != nil {
		return err
	}
	r.Expect(c, "TIME_WAIT", "TIME_WAIT")
	return r.Sleep(350 * time.Millisecond)
}

func crossingFinsFirstLost(r *Run) error {
	// FORWARD, in order: the server's first FIN dropped (before the rc tap), the client's FINs
	// to the delay line (after the tap).
	if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-i", RouterServerIface, "-p", "tcp", "--tcp-flags", "FIN", "FIN",
		"-m", "statistic", "--mode", "nth", "--every", "100000", "--packet", "0", "-j", "DROP"); err != nil {
		return err
	}
	if _, err := r.Lab.StartDelayLine(3, 100*time.Millisecond, "FIN", tcpFIN); err != nil {
		return err
	}
	if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-i", RouterClientIface, "-p", "tcp", "-j", "NFQUEUE", "--queue-num", "3"); err != nil {
		return err
	}
	c, err := r.closeBothAtOnce("crossing-fins-first-lost")
	if err != nil {
		return err
	}
	if err := r.wantDroppedIn(r.Lab.Router, "FORWARD", 1); err != nil {
		return err
	}
	r.Expect(c, "TIME_WAIT", "TIME_WAIT")
	r.Check(segmentPastFINFirst("server", fromServer))
	return nil
}

// wantDroppedIn checks the DROP rules of chain in ns dropped n packets in all.
func (r *Run) wantDroppedIn(ns Netns, chain string, n int) error {
	got, err := r.DropCounts(ns, false, chain)
	if err != nil {
		return err
	}
	sum := 0
	for _, v := range got {
		sum += v
	}
	if sum != n {
		return fmt.Errorf("%s %s: want %d packet(s) dropped, iptables counted %v", ns.Name, chain, n, got)
	}
	return nil
}

// closeBothAtOnce: request and answer on one connection, quiet, then both ends shut down at
// once; it returns once both are in TIME_WAIT.
func (r *Run) closeBothAtOnce(what string) (*Conn, error) {
	c, err := connected(false, r, what)
	if err != nil {
		return nil, err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return nil, err
	}
	if _, err := r.Quiesce(r.wait()); err != nil {
		return nil, err
	}
	if err := c.C.ShutdownWrite(); err != nil {
		return nil, err
	}
	if err := c.S.ShutdownWrite(); err != nil {
		return nil, err
	}
	if err := r.WaitSS(r.Lab.Client, c.CAddr, c.SAddr, "TIME_WAIT", r.wait()); err != nil {
		return nil, err
	}
	return c, r.WaitSS(r.Lab.Server, c.SAddr, c.CAddr, "TIME_WAIT", r.wait())
}

func zeroWindowBlackhole(r *Run) error {
	if err := r.Lab.Client.Sysctl("net.ipv4.tcp_retries2", "3"); err != nil {
		return err
	}
	l, err := r.Listen(false, 80, RcvBuf(2048))
	if err != nil {
		return err
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	c, err := r.Connect(false, 80, l, "zero-window-blackhole", SndBuf(8192))
	if err != nil {
		return err
	}
	if _, err := c.C.WriteUntilBlocked(); err != nil {
		return err
	}
	// Let a zero-window probe or two be answered, then cut the path.
	if err := r.Sleep(700 * time.Millisecond); err != nil {
		return err
	}
	if err := r.blackhole(); err != nil {
		return err
	}
	r.atLeast(1, "zero-window advertisements from the server", func(p Packet) bool { return fromServer(p) && p.Win == 0 && !p.Has(FlagSYN) })
	if err := r.afterGiveUp(c, c.C, "CLOSED", "ESTABLISHED"); err != nil {
		return err
	}
	// The persist timer gives up when its next probe is due, which backs off: 1 s after, the
	// silence is still shorter than a doubled backoff (@1 is undecidable); the final snapshot
	// comes once it is well past.
	return r.Sleep(3 * time.Second)
}

// segmentPastFINFirst checks that the tap saw a segment of side (from) one past its FIN before the
// FIN itself: the FIN was held or lost before the tap.
func segmentPastFINFirst(side string, from func(Packet) bool) func(*CaptureInfo) error {
	return func(info *CaptureInfo) error {
		fins := filter(info, func(p Packet) bool { return from(p) && p.Has(FlagFIN) })
		if len(fins) == 0 {
			return fmt.Errorf("no %s FIN on the tap", side)
		}
		for _, p := range info.TCP {
			if from(p) && p.N < fins[0].N && p.Seq == fins[0].Seq+1 {
				return nil
			}
		}
		return fmt.Errorf("no %s segment one past its FIN before the FIN on the tap", side)
	}
}
