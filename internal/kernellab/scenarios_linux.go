package kernellab

import (
	"fmt"
	"math/rand"
	"time"
)

func fromClient(p Packet) bool { return Side(p.Src.Addr()) == "client" }
func fromServer(p Packet) bool { return Side(p.Src.Addr()) == "server" }

func count(info *CaptureInfo, f func(Packet) bool) int {
	n := 0
	for _, p := range info.TCP {
		if f(p) {
			n++
		}
	}
	return n
}

// atLeast registers a capture check: at least n segments match f.
func (r *Run) atLeast(n int, what string, f func(Packet) bool) {
	r.Check(func(info *CaptureInfo) error {
		if got := count(info, f); got < n {
			return fmt.Errorf("want at least %d %s, capture has %d", n, what, got)
		}
		return nil
	})
}

func isSYN(p Packet) bool    { return p.Has(FlagSYN) && !p.Has(FlagACK) }
func isSYNACK(p Packet) bool { return p.Has(FlagSYN | FlagACK) }

// simple builds the scenarios with one connection on port 80 of either family.
func connected(v6 bool, r *Run, what string, opts ...SockOpt) (*Conn, error) {
	l, err := r.Listen(v6, 80)
	if err != nil {
		return nil, err
	}
	if err := r.StartCapture(); err != nil {
		return nil, err
	}
	return r.Connect(v6, 80, l, what, opts...)
}

func closeClientFirst(v6 bool) func(*Run) error {
	return func(r *Run) error {
		c, err := connected(v6, r, "close-client-first")
		if err != nil {
			return err
		}
		if err := r.Exchange(c, httpReq, httpResp); err != nil {
			return err
		}
		return r.CloseClientFirst(c)
	}
}

func halfClose(v6 bool) func(*Run) error {
	return func(r *Run) error {
		c, err := connected(v6, r, "half-close")
		if err != nil {
			return err
		}
		return r.HalfClose(c)
	}
}

func refused(v6 bool) func(*Run) error {
	return func(r *Run) error {
		if err := r.StartCapture(); err != nil {
			return err
		}
		if _, err := r.Refused(v6, 80, "refused"); err != nil {
			return err
		}
		r.atLeast(1, "RST from the server", func(p Packet) bool { return fromServer(p) && p.Has(FlagRST) })
		return nil
	}
}

func synDropped(v6 bool) func(*Run) error {
	return func(r *Run) error {
		if _, err := r.Listen(v6, 80); err != nil {
			return err
		}
		if err := r.DropSYNs(v6, 80); err != nil {
			return err
		}
		if err := r.StartCapture(); err != nil {
			return err
		}
		c, err := r.Dial(v6, 80, "syn-dropped")
		if err != nil {
			return err
		}
		// SYN at 0 s, retransmissions at 1 s and 3 s (initial RTO 1 s, doubling).
		if err := r.Sleep(3300 * time.Millisecond); err != nil {
			return err
		}
		if err := c.C.WaitState(r.Ctx, 0, tcpSynSent); err != nil {
			return err
		}
		r.Expect(c, "SYN_SENT", "CLOSED")
		r.atLeast(3, "SYNs (original + 2 retransmissions)", isSYN)
		r.Check(func(info *CaptureInfo) error {
			if n := count(info, fromServer); n > 0 {
				return fmt.Errorf("%d segments from the server: the SYN was not dropped", n)
			}
			return nil
		})
		return nil
	}
}

// Scenarios returns every scenario, in recording order.
func Scenarios() []*Scenario {
	return append(append(baseScenarios(), moreScenarios()...), issue14Scenarios()...)
}

// baseScenarios are the first 20 scenarios.
func baseScenarios() []*Scenario {
	return []*Scenario{
		{Name: "close-client-first", Description: "IPv4: an HTTP-like request and answer, then the client closes first and the server closes after reading EOF; the client ends in TIME_WAIT.",
			Play: closeClientFirst(false)},
		{Name: "close-client-first-v6", Description: "IPv6: an HTTP-like request and answer, then the client closes first and the server closes after reading EOF; the client ends in TIME_WAIT.",
			Play: closeClientFirst(true)},
		{Name: "close-server-first", Description: "IPv4: request and answer, then the server closes first and the client closes after reading EOF; the server ends in TIME_WAIT.",
			Play: func(r *Run) error {
				c, err := connected(false, r, "close-server-first")
				if err != nil {
					return err
				}
				if err := r.Exchange(c, httpReq, httpResp); err != nil {
					return err
				}
				return r.CloseServerFirst(c)
			}},
		{Name: "half-close", Description: "IPv4: the client sends a request and shutdown(SHUT_WR); the server reads to EOF, answers with data, and never closes (client FIN_WAIT_2, server CLOSE_WAIT).",
			Play: halfClose(false)},
		{Name: "half-close-v6", Description: "IPv6: the client sends a request and shutdown(SHUT_WR); the server reads to EOF, answers with data, and never closes (client FIN_WAIT_2, server CLOSE_WAIT).",
			Play: halfClose(true)},
		{Name: "server-closes-client-never", Description: "IPv4: the server answers and close()s; the client reads to EOF but keeps its socket open (client CLOSE_WAIT, server FIN_WAIT_2).",
			Play: func(r *Run) error {
				c, err := connected(false, r, "server-closes-client-never")
				if err != nil {
					return err
				}
				return r.ServerClosesClientNever(c)
			}},
		{Name: "refused", Description: "IPv4: the client connects to a port with no listener and the server's kernel answers the SYN with RST (both CLOSED).",
			Play: refused(false)},
		{Name: "refused-v6", Description: "IPv6: the client connects to a port with no listener and the server's kernel answers the SYN with RST (both CLOSED).",
			Play: refused(true)},
		{Name: "syn-dropped", Description: "IPv4: the router drops every SYN to port 80 after the tap has seen it; the client retransmits its SYN twice and stays in SYN_SENT.",
			Play: synDropped(false)},
		{Name: "syn-dropped-v6", Description: "IPv6: the router drops every SYN to port 80 after the tap has seen it; the client retransmits its SYN twice and stays in SYN_SENT.",
			Play: synDropped(true)},
		{Name: "established-idle", Description: "IPv4: a connection exchanges a request and an answer, then both sides stay idle with their sockets open (both ESTABLISHED).",
			Play: func(r *Run) error {
				c, err := connected(false, r, "established-idle")
				if err != nil {
					return err
				}
				if err := r.Exchange(c, httpReq, httpResp); err != nil {
					return err
				}
				r.Expect(c, "ESTABLISHED", "ESTABLISHED")
				return r.Sleep(300 * time.Millisecond)
			}},
		{Name: "abort-linger0", Description: "IPv4: after a request and answer the client sets SO_LINGER 0 and closes, so its kernel sends RST instead of FIN (both CLOSED).",
			Play: func(r *Run) error {
				c, err := connected(false, r, "abort-linger0")
				if err != nil {
					return err
				}
				if err := r.Exchange(c, httpReq, httpResp); err != nil {
					return err
				}
				r.atLeast(1, "RST from the client", func(p Packet) bool { return fromClient(p) && p.Has(FlagRST) })
				return r.Abort(c, true)
			}},
		{Name: "data-after-close", Description: "IPv4: the server closes fully; the client (CLOSE_WAIT) writes more data and the server's kernel answers with RST (both CLOSED).",
			Play: func(r *Run) error {
				c, err := connected(false, r, "data-after-close")
				if err != nil {
					return err
				}
				if err := r.Exchange(c, httpReq, httpResp); err != nil {
					return err
				}
				r.atLeast(1, "RST from the server", func(p Packet) bool { return fromServer(p) && p.Has(FlagRST) })
				return r.DataAfterClose(c)
			}},
		{Name: "crossing-fins", Description: "IPv4: both sides close at the same moment; the router holds traffic from the first FIN (NFQUEUE) until it has both FINs, so they cross and each side goes FIN_WAIT_1 -> CLOSING -> TIME_WAIT.",
			Play: crossingFINs},
		{Name: "keepalive-idle", Description: "IPv4: an idle connection whose client has SO_KEEPALIVE with TCP_KEEPIDLE=1 s and TCP_KEEPINTVL=1 s, so keepalive probes and their ACKs are on the wire (both ESTABLISHED).",
			Play: func(r *Run) error {
				c, err := connected(false, r, "keepalive-idle")
				if err != nil {
					return err
				}
				if err := r.Exchange(c, httpReq, httpResp); err != nil {
					return err
				}
				if err := c.C.Keepalive(1, 1, 5); err != nil {
					return err
				}
				r.Expect(c, "ESTABLISHED", "ESTABLISHED")
				// Keepalive probe: no payload, seq = snd_nxt - 1, after the exchange.
				r.atLeast(2, "keepalive probes", func(p Packet) bool {
					return fromClient(p) && p.PayloadLen == 0 && p.Flags == FlagACK && p.Time.Sub(r.Lab.CaptureStart) > 900*time.Millisecond
				})
				return r.Sleep(3300 * time.Millisecond)
			}},
		{Name: "zero-window", Description: "IPv4: the server has a small SO_RCVBUF and never reads; the client writes until its send buffer is full, the server advertises a zero window and the client sends zero-window probes (both ESTABLISHED).",
			Play: func(r *Run) error {
				l, err := r.Listen(false, 80, RcvBuf(2048))
				if err != nil {
					return err
				}
				if err := r.StartCapture(); err != nil {
					return err
				}
				c, err := r.Connect(false, 80, l, "zero-window", SndBuf(8192))
				if err != nil {
					return err
				}
				n, err := c.C.WriteUntilBlocked()
				if err != nil {
					return err
				}
				r.Note("client wrote %d bytes before its send buffer was full", n)
				r.Expect(c, "ESTABLISHED", "ESTABLISHED")
				r.atLeast(1, "zero-window advertisements from the server", func(p Packet) bool { return fromServer(p) && p.Win == 0 && !p.Has(FlagSYN) })
				return r.Sleep(1600 * time.Millisecond)
			}},
		{Name: "midstream", Description: "IPv4: two connections are established and exchange data before tcpdump starts; during the capture both exchange more data, then the second one closes client-first (first stays ESTABLISHED, second client TIME_WAIT).",
			Play: func(r *Run) error {
				l, err := r.Listen(false, 80)
				if err != nil {
					return err
				}
				a, err := r.Connect(false, 80, l, "midstream-a")
				if err != nil {
					return err
				}
				b, err := r.Connect(false, 80, l, "midstream-b")
				if err != nil {
					return err
				}
				for _, c := range []*Conn{a, b} {
					if err := r.Exchange(c, httpReq, httpResp); err != nil {
						return err
					}
				}
				if err := r.Sleep(100 * time.Millisecond); err != nil {
					return err
				}
				if err := r.StartCapture(); err != nil {
					return err
				}
				for _, c := range []*Conn{a, b} {
					if err := r.Exchange(c, "more please\n", "here is more\n"); err != nil {
						return err
					}
				}
				if err := r.Exchange(a, "", "server speaks again\n"); err != nil {
					return err
				}
				r.Expect(a, "ESTABLISHED", "ESTABLISHED")
				r.Check(func(info *CaptureInfo) error {
					if n := count(info, func(p Packet) bool { return p.Has(FlagSYN) }); n > 0 {
						return fmt.Errorf("%d SYNs in a midstream capture", n)
					}
					return nil
				})
				return r.CloseClientFirst(b)
			}},
		{Name: "ack-dropped", Description: "IPv4: the router drops everything but SYNs from the client to port 80 after the tap; the client is ESTABLISHED but the server never gets the handshake's ACK, stays SYN_RECEIVED and retransmits its SYN-ACK.",
			Play: func(r *Run) error {
				if _, err := r.Listen(false, 80); err != nil {
					return err
				}
				if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-i", RouterClientIface, "-p", "tcp", "--dport", "80", "!", "--syn", "-j", "DROP"); err != nil {
					return err
				}
				if err := r.StartCapture(); err != nil {
					return err
				}
				c, err := r.Dial(false, 80, "ack-dropped")
				if err != nil {
					return err
				}
				if err := c.C.WaitState(r.Ctx, waitLong, tcpEstablished); err != nil {
					return err
				}
				r.Expect(c, "ESTABLISHED", "SYN_RECEIVED")
				r.atLeast(2, "SYN-ACKs (original + retransmission)", isSYNACK)
				return r.Sleep(1300 * time.Millisecond)
			}},
		{Name: "fin-dropped", Description: "IPv4: after a request and answer the client closes, but the router drops the client's FINs after the tap; the client stays FIN_WAIT_1 retransmitting its FIN and the server stays ESTABLISHED.",
			Play: func(r *Run) error {
				c, err := connected(false, r, "fin-dropped")
				if err != nil {
					return err
				}
				if err := r.Exchange(c, httpReq, httpResp); err != nil {
					return err
				}
				if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-i", RouterClientIface, "-p", "tcp", "--dport", "80", "--tcp-flags", "FIN", "FIN", "-j", "DROP"); err != nil {
					return err
				}
				if err := c.C.Close(); err != nil {
					return err
				}
				r.Expect(c, "FIN_WAIT_1", "ESTABLISHED")
				r.atLeast(2, "client FINs (original + retransmission)", func(p Packet) bool { return fromClient(p) && p.Has(FlagFIN) })
				return r.Sleep(900 * time.Millisecond)
			}},
		{Name: "mixed-40", Description: "IPv4 and IPv6: 43 overlapping connections with mixed fates (closes both ways, half-closes, server-closed, refused, SYNs dropped, resets both ways, data after close, idle established).",
			Play: mixed40},
	}
}

func crossingFINs(r *Run) error {
	h, err := r.Lab.StartHolder(0, 2, 2*time.Second)
	if err != nil {
		return err
	}
	if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-p", "tcp",
		"-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"); err != nil {
		return err
	}
	c, err := connected(false, r, "crossing-fins")
	if err != nil {
		return err
	}
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if err := c.C.Close(); err != nil {
		return err
	}
	if err := c.S.Close(); err != nil {
		return err
	}
	if err := waitFor(r.Ctx, waitLong, "both FINs held and released", func() (bool, error) { return h.Released(), nil }); err != nil {
		return err
	}
	for _, e := range h.Events() {
		r.Note("router FIN holder: %s", e)
	}
	r.Expect(c, "TIME_WAIT", "TIME_WAIT")
	r.Check(func(info *CaptureInfo) error {
		// The server's FIN must not acknowledge the client's FIN: it was sent before that arrived.
		var cfin *Packet
		cfinIdx := 0
		for i, p := range info.TCP {
			if fromClient(p) && p.Has(FlagFIN) && cfin == nil {
				cfin, cfinIdx = &info.TCP[i], i
			}
			if fromServer(p) && p.Has(FlagFIN) {
				if cfin == nil {
					return fmt.Errorf("server FIN before client FIN on the tap")
				}
				if p.Ack != cfin.Seq+uint32(cfin.PayloadLen) {
					return fmt.Errorf("server FIN acks %d, client FIN is at %d: FINs did not cross", p.Ack, cfin.Seq)
				}
				if i != cfinIdx+1 {
					return fmt.Errorf("segments between the two FINs on the tap")
				}
				return nil
			}
		}
		return fmt.Errorf("no FIN pair in the capture")
	})
	return nil
}

func mixed40(r *Run) error {
	ls := map[[2]int]*Sock{} // {v6, port} -> listener
	for _, v6 := range []bool{false, true} {
		for _, port := range []uint16{80, 8080, 8081} {
			l, err := r.Listen(v6, port)
			if err != nil {
				return err
			}
			ls[[2]int{b2i(v6), int(port)}] = l
		}
		if err := r.DropSYNs(v6, 8081); err != nil {
			return err
		}
	}
	if err := r.StartCapture(); err != nil {
		return err
	}
	start := time.Now()
	// Stuck handshakes first so that their first retransmission (after 1 s) is captured.
	for i, v6 := range []bool{false, false, true} {
		c, err := r.Dial(v6, 8081, fmt.Sprintf("syn-dropped-%d", i))
		if err != nil {
			return err
		}
		r.Expect(c, "SYN_SENT", "CLOSED")
	}
	type plan struct {
		what string
		v6   bool
		port uint16
		fate func(*Conn) error
	}
	var plans []plan
	add := func(n int, what string, v6 bool, port uint16, fate func(*Conn) error) {
		for i := 0; i < n; i++ {
			plans = append(plans, plan{fmt.Sprintf("%s-%s-%d", what, map[bool]string{false: "v4", true: "v6"}[v6], i), v6, port, fate})
		}
	}
	idle := func(c *Conn) error { r.Expect(c, "ESTABLISHED", "ESTABLISHED"); return nil }
	add(6, "close-client-first", false, 80, r.CloseClientFirst)
	add(2, "close-client-first", true, 80, r.CloseClientFirst)
	add(4, "close-server-first", false, 8080, r.CloseServerFirst)
	add(2, "close-server-first", true, 8080, r.CloseServerFirst)
	add(3, "half-close", false, 80, r.HalfClose)
	add(1, "half-close", true, 8080, r.HalfClose)
	add(2, "server-closes", false, 8080, r.ServerClosesClientNever)
	add(1, "server-closes", true, 80, r.ServerClosesClientNever)
	add(3, "abort-client", false, 80, func(c *Conn) error { return r.Abort(c, true) })
	add(2, "abort-server", false, 8080, func(c *Conn) error { return r.Abort(c, false) })
	add(1, "abort-server", true, 80, func(c *Conn) error { return r.Abort(c, false) })
	add(2, "data-after-close", false, 80, r.DataAfterClose)
	add(5, "idle", false, 80, idle)
	add(2, "idle", true, 8080, idle)
	rng := rand.New(rand.NewSource(40))
	rng.Shuffle(len(plans), func(i, j int) { plans[i], plans[j] = plans[j], plans[i] })
	refusedLeft := []bool{false, true, false, true, false} // interleaved among the others
	// Waves: open a batch of connections (all alive at once), then settle their fates in a
	// different order, so lifetimes overlap.
	for w := 0; w < len(plans); w += 9 {
		batch := plans[w:min(w+9, len(plans))]
		conns := make([]*Conn, len(batch))
		for i, p := range batch {
			c, err := r.Connect(p.v6, p.port, ls[[2]int{b2i(p.v6), int(p.port)}], p.what)
			if err != nil {
				return err
			}
			if p.what[:4] != "half" {
				if err := r.Exchange(c, httpReq, httpResp); err != nil {
					return err
				}
			}
			conns[i] = c
		}
		if len(refusedLeft) > 0 {
			if _, err := r.Refused(refusedLeft[0], 81, fmt.Sprintf("refused-%d", len(refusedLeft))); err != nil {
				return err
			}
			refusedLeft = refusedLeft[1:]
		}
		for _, i := range rng.Perm(len(batch)) {
			if err := batch[i].fate(conns[i]); err != nil {
				return fmt.Errorf("%s: %w", batch[i].what, err)
			}
		}
	}
	for i, v6 := range refusedLeft {
		if _, err := r.Refused(v6, 81, fmt.Sprintf("refused-late-%d", i)); err != nil {
			return err
		}
	}
	if d := 1400*time.Millisecond - time.Since(start); d > 0 {
		if err := r.Sleep(d); err != nil {
			return err
		}
	}
	r.Note("%d connections", len(r.conns))
	r.atLeast(6, "SYNs to the dropped port 8081 (3 connections, each retransmitted)", func(p Packet) bool { return isSYN(p) && p.Dst.Port() == 8081 })
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
