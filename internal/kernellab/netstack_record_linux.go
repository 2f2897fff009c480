package kernellab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// NetstackScenario is one recording with a netstack host on one end or both: Play drives the
// traffic through r.Client and r.Server, whatever stack each is.
type NetstackScenario struct {
	Name, Description        string
	ClientStack, ServerStack string
	Play                     func(r *NSRun) error
	Fresh                    bool // part of the quick subset TestNetstackFresh records anew
	// ServerTimeWait: the netstack server runs with this TIME_WAIT instead of its default.
	ServerTimeWait time.Duration
	// ToolArgs: what the tool is told to be held to the truth (scenario.json tool_args).
	ToolArgs []string
	// FinalAt: the truth is taken long after the last packet; the tool is asked with --at.
	FinalAt bool
	// Tap: where tcpdump runs (TapRouter when empty).
	Tap string
}

// NSRun is the context of one netstack scenario recording.
type NSRun struct {
	Ctx            context.Context
	Lab            *Lab
	Client, Server Host
	dir            string
	tap            string
	capStart       bool
	conns          []*nsConn
	notes          []string
	checks         []func(*CaptureInfo) error
}

type nsConn struct {
	Conn
	c, s Endpoint
}

const nsWait = 3 * time.Second

func (r *NSRun) startCapture() error {
	if r.capStart {
		return errors.New("capture already started")
	}
	r.capStart = true
	return r.Lab.StartCapture(filepath.Join(r.dir, CaptureFile), r.tap)
}

func (r *NSRun) check(f func(*CaptureInfo) error) { r.checks = append(r.checks, f) }

func (r *NSRun) atLeast(n int, what string, f func(Packet) bool) {
	r.check(func(info *CaptureInfo) error {
		if got := count(info, f); got < n {
			return fmt.Errorf("want at least %d %s, capture has %d", n, what, got)
		}
		return nil
	})
}

// dial connects from the client host without waiting.
func (r *NSRun) dial(v6 bool, port uint16, what string) (*nsConn, error) {
	dst := netip.AddrPortFrom(ServerAddr(v6), port)
	e, err := r.Client.Dial(dst)
	if err != nil {
		return nil, err
	}
	c := &nsConn{Conn: Conn{What: what, CAddr: e.Local(), SAddr: dst}, c: e}
	r.conns = append(r.conns, c)
	return c, nil
}

// connect listens on port 80 of the server, starts the capture and makes one connection.
func (r *NSRun) connect(v6 bool, what string, rcvbuf int) (*nsConn, error) {
	l, err := r.Server.Listen(v6, 80, rcvbuf)
	if err != nil {
		return nil, err
	}
	if err := r.startCapture(); err != nil {
		return nil, err
	}
	c, err := r.dial(v6, 80, what)
	if err != nil {
		return nil, err
	}
	if err := c.c.WaitState(nsWait, "ESTABLISHED"); err != nil {
		return nil, err
	}
	s, peer, err := l.Accept(nsWait)
	if err != nil {
		return nil, err
	}
	if peer != c.CAddr {
		return nil, fmt.Errorf("accepted %s, expected %s", peer, c.CAddr)
	}
	c.s = s
	return c, nil
}

func (c *nsConn) expect(client, server string) {
	c.ClientState, c.ServerState, c.expected = client, server, true
}

func (r *NSRun) exchange(c *nsConn) error {
	if err := c.c.Write(len(httpReq)); err != nil {
		return err
	}
	if err := c.s.Read(len(httpReq), nsWait); err != nil {
		return err
	}
	if err := c.s.Write(len(httpResp)); err != nil {
		return err
	}
	return c.c.Read(len(httpResp), nsWait)
}

// closeFirst: one side closes after the exchange, the other reads EOF and closes too; the
// first ends in TIME_WAIT.
func closeFirst(v6, client bool) func(*NSRun) error {
	return func(r *NSRun) error {
		c, err := r.connect(v6, "close-first", 0)
		if err != nil {
			return err
		}
		if err := r.exchange(c); err != nil {
			return err
		}
		return closeFirstOn(c, client)
	}
}

// closeFirstOn closes c from one side; the other reads EOF and closes; the first side ends in
// TIME_WAIT.
func closeFirstOn(c *nsConn, client bool) error {
	{
		a, b := c.c, c.s
		if !client {
			a, b = b, a
		}
		if err := a.Close(); err != nil {
			return err
		}
		if err := b.ReadEOF(nsWait); err != nil {
			return err
		}
		if err := b.WaitState(nsWait, "CLOSE_WAIT"); err != nil {
			return err
		}
		if err := b.Close(); err != nil {
			return err
		}
		if err := a.WaitState(nsWait, "TIME_WAIT"); err != nil {
			return err
		}
		if err := b.WaitState(nsWait, "CLOSED"); err != nil {
			return err
		}
		if client {
			c.expect("TIME_WAIT", "CLOSED")
		} else {
			c.expect("CLOSED", "TIME_WAIT")
		}
		return nil
	}
}

func nsHalfClose(v6 bool) func(*NSRun) error {
	return func(r *NSRun) error {
		c, err := r.connect(v6, "half-close", 0)
		if err != nil {
			return err
		}
		if err := c.c.Write(len(httpReq)); err != nil {
			return err
		}
		if err := c.c.ShutdownWrite(); err != nil {
			return err
		}
		if err := c.s.ReadEOF(nsWait); err != nil {
			return err
		}
		if err := c.s.Write(len(httpResp)); err != nil {
			return err
		}
		if err := c.c.Read(len(httpResp), nsWait); err != nil {
			return err
		}
		if err := c.c.WaitState(nsWait, "FIN_WAIT_2"); err != nil {
			return err
		}
		if err := c.s.WaitState(nsWait, "CLOSE_WAIT"); err != nil {
			return err
		}
		c.expect("FIN_WAIT_2", "CLOSE_WAIT")
		return nil
	}
}

func nsRefused(v6 bool) func(*NSRun) error {
	return func(r *NSRun) error {
		if err := r.startCapture(); err != nil {
			return err
		}
		c, err := r.dial(v6, 81, "refused")
		if err != nil {
			return err
		}
		if err := c.c.WaitState(nsWait, "CLOSED"); err != nil {
			return err
		}
		if !c.c.Refused() {
			return fmt.Errorf("%s: connection not refused", &c.Conn)
		}
		c.expect("CLOSED", "CLOSED")
		r.atLeast(1, "RST from the server", func(p Packet) bool { return fromServer(p) && p.Has(FlagRST) })
		return nil
	}
}

// nsSynDropped: the router drops the client's SYNs; after 1.3 s the client has sent its SYN
// and one retransmission (both stacks start with a 1 s RTO) and is still in SYN_SENT.
func nsSynDropped(v6 bool) func(*NSRun) error {
	return func(r *NSRun) error {
		if _, err := r.Server.Listen(v6, 80, 0); err != nil {
			return err
		}
		if err := r.Lab.Firewall(r.Ctx, v6, "-A", "FORWARD", "-i", RouterClientIface, "-p", "tcp", "--syn", "--dport", "80", "-j", "DROP"); err != nil {
			return err
		}
		if err := r.startCapture(); err != nil {
			return err
		}
		c, err := r.dial(v6, 80, "syn-dropped")
		if err != nil {
			return err
		}
		time.Sleep(1300 * time.Millisecond)
		if err := c.c.WaitState(0, "SYN_SENT"); err != nil {
			return err
		}
		c.expect("SYN_SENT", "CLOSED")
		r.atLeast(2, "SYNs (original + 1 retransmission)", isSYN)
		r.check(func(info *CaptureInfo) error {
			if n := count(info, fromServer); n > 0 {
				return fmt.Errorf("%d segments from the server: the SYN was not dropped", n)
			}
			return nil
		})
		return nil
	}
}

func nsIdle(v6 bool) func(*NSRun) error {
	return func(r *NSRun) error {
		c, err := r.connect(v6, "established-idle", 0)
		if err != nil {
			return err
		}
		if err := r.exchange(c); err != nil {
			return err
		}
		c.expect("ESTABLISHED", "ESTABLISHED")
		return nil
	}
}

// nsAbort: one side closes with SO_LINGER 0 (RST); the other's endpoint is CLOSED.
func nsAbort(v6, client bool) func(*NSRun) error {
	return func(r *NSRun) error {
		c, err := r.connect(v6, "abort", 0)
		if err != nil {
			return err
		}
		if err := r.exchange(c); err != nil {
			return err
		}
		a, b := c.c, c.s
		if !client {
			a, b = b, a
		}
		if err := a.Linger0(); err != nil {
			return err
		}
		if err := a.Close(); err != nil {
			return err
		}
		if err := b.WaitState(nsWait, "CLOSED"); err != nil {
			return err
		}
		c.expect("CLOSED", "CLOSED")
		r.atLeast(1, "RST", func(p Packet) bool { return p.Has(FlagRST) })
		return nil
	}
}

// nsZeroWindow: the server never reads and has a small receive buffer; the client writes
// until its send buffer is full, and the server advertises a zero window.
func nsZeroWindow(v6 bool) func(*NSRun) error {
	return func(r *NSRun) error {
		c, err := r.connect(v6, "zero-window", 4096)
		if err != nil {
			return err
		}
		if _, err := c.c.WriteUntilBlocked(); err != nil {
			return err
		}
		time.Sleep(400 * time.Millisecond)
		c.expect("ESTABLISHED", "ESTABLISHED")
		r.atLeast(1, "zero-window ACK from the server", func(p Packet) bool { return fromServer(p) && p.Win == 0 && !p.Has(FlagRST) })
		return nil
	}
}

// NetstackScenarios returns every netstack scenario: each play with a netstack client and a
// Linux server (netstack-client-*), a Linux client and a netstack server (netstack-server-*),
// and netstack on both ends (netstack-both-*).
func NetstackScenarios() []*NetstackScenario {
	type play struct {
		name, desc string
		f          func(*NSRun) error
		fresh      string // the combination(s) recorded anew by TestNetstackFresh
	}
	plays := []play{
		{"close-client-first", "IPv4: request and answer, the client closes first, the server after reading EOF; the client ends in TIME_WAIT.", closeFirst(false, true), "both"},
		{"close-client-first-v6", "IPv6: request and answer, the client closes first, the server after reading EOF; the client ends in TIME_WAIT.", closeFirst(true, true), "client"},
		{"close-server-first", "IPv4: request and answer, the server closes first, the client after reading EOF; the server ends in TIME_WAIT.", closeFirst(false, false), "server"},
		{"half-close", "IPv4: the client sends its request and shuts down writing; the server answers and never closes (FIN_WAIT_2 / CLOSE_WAIT).", nsHalfClose(false), "server"},
		{"half-close-v6", "IPv6: the client sends its request and shuts down writing; the server answers and never closes (FIN_WAIT_2 / CLOSE_WAIT).", nsHalfClose(true), ""},
		{"refused", "IPv4: the client connects to a port without listener and is refused with a RST.", nsRefused(false), "client"},
		{"refused-v6", "IPv6: the client connects to a port without listener and is refused with a RST.", nsRefused(true), "server"},
		{"syn-dropped", "IPv4: the router drops the client's SYNs; after 1.3 s the client has retransmitted its SYN once and is still in SYN_SENT.", nsSynDropped(false), ""},
		{"established-idle-v6", "IPv6: request and answer, then both ends stay open and quiet (ESTABLISHED).", nsIdle(true), ""},
		{"abort-client", "IPv4: request and answer, then the client closes with SO_LINGER 0 (RST); both ends CLOSED.", nsAbort(false, true), "both"},
		{"abort-server-v6", "IPv6: request and answer, then the server closes with SO_LINGER 0 (RST); both ends CLOSED.", nsAbort(true, false), "client"},
		{"syn-retries", "IPv4: the router drops the client's SYNs for 8 s: the client's own SYN retransmission schedule (Linux 6.x: 1 s apart at first; netstack: doubling from 1 s); the client is still in SYN_SENT.", nsSynRetries, ""},
		{"challenge-ack", "IPv4: a RST inside the server's receive window but 1000 bytes past RCV.NXT, forged from the router: the server answers with a challenge ACK (RFC 5961) and stays ESTABLISHED; tap on the router's server side.", nsChallengeACK, ""},
		{"zero-window", "IPv4: the server never reads and has a 4 KiB receive buffer; the client writes until blocked and the server advertises a zero window.", nsZeroWindow(false), ""},
	}
	combos := []struct{ prefix, cs, ss, who string }{
		{"netstack-client", StackNetstack, StackLinux, "a netstack client and a Linux server"},
		{"netstack-server", StackLinux, StackNetstack, "a Linux client and a netstack server"},
		{"netstack-both", StackNetstack, StackNetstack, "netstack on both ends"},
		// lwIP: IPv4 only (lwiphost.c).
		{"lwip-client", StackLwIP, StackLinux, "an lwIP client and a Linux server"},
		{"lwip-server", StackLinux, StackLwIP, "a Linux client and an lwIP server"},
	}
	out := []*NetstackScenario{{
		Name: "mixed-timewait",
		Description: "IPv4, a Linux client and a netstack server tuned to a 30 s TIME_WAIT (macOS's 2·MSL): connection A closes client first " +
			"(Linux TIME_WAIT, 60 s), connection B server first (netstack TIME_WAIT, 30 s); the truth is taken 36 s later, when " +
			"only A's client is still in TIME_WAIT. One profile for both ends gets one of them wrong; per-endpoint profiles " +
			"(--os 198.51.100.0/24=macos) get both right.",
		ClientStack: StackLinux, ServerStack: StackNetstack, ServerTimeWait: 30 * time.Second,
		ToolArgs: []string{"--os", "198.51.100.0/24=macos"}, FinalAt: true, Play: mixedTimeWait(36 * time.Second),
	}, {
		Name: "lwip-timewait",
		Description: "IPv4, an lwIP client (TIME_WAIT 120 s: 2 x TCP_MSL 60 s, lwIP's default) and a Linux server (60 s): " +
			"connection A closes client first, B server first; the truth is taken 65 s later, when only A's client is still in " +
			"TIME_WAIT. lwIP's SYN (initial TTL 255, mss,nop,ws) matches no signature, so --os auto ages it as Linux and gets A " +
			"wrong; --os 192.0.2.0/24=windows (also 120 s) gets both right.",
		ClientStack: StackLwIP, ServerStack: StackLinux,
		ToolArgs: []string{"--os", "192.0.2.0/24=windows"}, FinalAt: true, Play: mixedTimeWait(65 * time.Second),
	}}
	for _, c := range combos {
		for _, p := range plays {
			lwip := c.cs == StackLwIP || c.ss == StackLwIP
			// lwIP: IPv4 only; its first SYN retransmission comes after 3 s (syn-retries shows
			// it); and its server dies in zero-window ("malloc(): corrupted top size", inside
			// liblwip's own threads while the host waits on stdin, with or without SO_RCVBUF)
			// once a Linux client has filled its window: not investigated further.
			if lwip && (strings.HasSuffix(p.name, "-v6") || c.cs == StackLwIP && p.name == "syn-dropped" ||
				c.ss == StackLwIP && p.name == "zero-window") {
				continue
			}
			tap := ""
			if p.name == "challenge-ack" {
				tap = TapRouterServer
			}
			out = append(out, &NetstackScenario{
				Name: c.prefix + "-" + p.name, Tap: tap,
				Description: strings.TrimSuffix(p.desc, ".") + "; " + c.who + ".",
				ClientStack: c.cs, ServerStack: c.ss, Play: p.f,
				Fresh: p.fresh != "" && strings.HasSuffix(c.prefix, p.fresh) && !lwip ||
					lwip && p.name == "close-client-first",
			})
		}
	}
	return out
}

// RecordNetstackScenario records one netstack scenario into dir (replaced only on success):
// capture.pcap from the router's tap, ss-client.txt and ss-server.txt from each end's own
// stack (`ss -tan` for a kernel, the host's listing for netstack), and scenario.json.
func RecordNetstackScenario(ctx context.Context, bins map[string]string, sc *NetstackScenario, dir string) (meta *ScenarioMeta, err error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+sc.Name+".tmp-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if tmp != "" && os.Getenv("KERNELLAB_KEEP_FAILED") == "" {
			os.RemoveAll(tmp)
		}
	}()
	lab, err := NewLab(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := lab.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("teardown: %w", cerr)
		}
	}()
	host := func(stack string, ns Netns, ifn string, a4, a6, g4, g6 netip.Addr, extra ...string) (Host, error) {
		switch stack {
		case StackLinux:
			return &kernelHost{ns: ns}, nil
		case StackLwIP:
			return StartLwIP(ctx, bins[StackLwIP], ns, ifn, netip.PrefixFrom(a4, 24), g4)
		}
		return StartNetstack(ctx, bins[StackNetstack], ns, ifn,
			[]netip.Prefix{netip.PrefixFrom(a4, 24), netip.PrefixFrom(a6, 64)}, []netip.Addr{g4, g6}, extra...)
	}
	var serverExtra []string
	tuning := ""
	if sc.ServerTimeWait > 0 {
		serverExtra = []string{"-timewait", sc.ServerTimeWait.String()}
		tuning = "server TIME_WAIT " + sc.ServerTimeWait.String() + " (netstack's TCPTimeWaitTimeoutOption)"
	}
	r := &NSRun{Ctx: ctx, Lab: lab, dir: tmp, tap: sc.Tap}
	if r.Client, err = host(sc.ClientStack, lab.Client, ClientIface, ClientV4, ClientV6, RouterClientV4, RouterClientV6); err != nil {
		return nil, err
	}
	defer r.Client.Close()
	if r.Server, err = host(sc.ServerStack, lab.Server, ServerIface, ServerV4, ServerV6, RouterServerV4, RouterServerV6, serverExtra...); err != nil {
		return nil, err
	}
	defer r.Server.Close()
	if err := sc.Play(r); err != nil {
		return nil, fmt.Errorf("play: %w", err)
	}
	if !r.capStart {
		return nil, errors.New("scenario never started the capture")
	}
	time.Sleep(150 * time.Millisecond)
	if err := lab.StopCapture(); err != nil {
		return nil, err
	}
	snap := time.Now()
	files := map[string]string{}
	for _, x := range []struct {
		h    Host
		file string
	}{{r.Client, SSClientFile}, {r.Server, SSServerFile}} {
		out, err := x.h.SS(ctx)
		if err != nil {
			return nil, err
		}
		files[x.file] = out
	}
	if err := writeTruth(tmp, files); err != nil {
		return nil, err
	}
	meta = baseMeta(sc.Name, sc.Description, sc.Tap, lab, snap)
	meta.Stacks = &Stacks{Client: sc.ClientStack, Server: sc.ServerStack, Tuning: tuning}
	meta.ToolArgs, meta.FinalAt, meta.Notes = sc.ToolArgs, sc.FinalAt, r.notes
	var wants []want
	var problems []string
	for _, c := range r.conns {
		if !c.expected {
			problems = append(problems, fmt.Sprintf("%s: scenario did not state its expected outcome", &c.Conn))
			continue
		}
		wants = append(wants, want{&c.Conn, c.ClientState, c.ServerState})
	}
	exp, more, err := judgeIntent(wants, files)
	if err != nil {
		return nil, err
	}
	meta.Expect, problems = exp, append(problems, more...)
	info, more, err := judgeCapture(tmp, meta, snap, r.checks)
	if err != nil {
		return nil, err
	}
	problems = append(problems, more...)
	meta.Frames, meta.TCPSegments, meta.MaxFrameLen = info.Frames, len(info.TCP), info.MaxCapLen
	meta.Notes = r.notes // checks may have added what they measured
	if len(problems) > 0 {
		return nil, fmt.Errorf("recording does not show the scenario's intent:\n  %s\nss client (%s):\n%sss server (%s):\n%s",
			strings.Join(problems, "\n  "), sc.ClientStack, files[SSClientFile], sc.ServerStack, files[SSServerFile])
	}
	if err := commitRecording(tmp, dir, meta); err != nil {
		return nil, err
	}
	tmp = ""
	return meta, nil
}

// RecordNetstack records the named netstack scenarios (all when only is empty; only the quick
// subset when fresh) into out/<name>/, parallel at a time, each with one retry.
func RecordNetstack(ctx context.Context, out string, only []string, fresh bool, parallel int, logf func(string, ...any)) ([]*ScenarioMeta, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	bins := map[string]string{}
	var err error
	if bins[StackNetstack], err = NetstackHostBinary(ctx); err != nil {
		return nil, err
	}
	lwipErr := errors.New("not built")
	var sel []*NetstackScenario
	for _, s := range NetstackScenarios() {
		if !((len(only) == 0 && (!fresh || s.Fresh)) || containsName(only, s.Name)) {
			continue
		}
		if s.ClientStack == StackLwIP || s.ServerStack == StackLwIP {
			if bins[StackLwIP] == "" && lwipErr != nil {
				bins[StackLwIP], lwipErr = LwIPHostBinary(ctx)
			}
			if lwipErr != nil {
				if len(only) > 0 {
					return nil, fmt.Errorf("%s: %w", s.Name, lwipErr)
				}
				logf("%-44s left out: %v", s.Name, lwipErr)
				continue
			}
		}
		sel = append(sel, s)
	}
	if len(sel) == 0 {
		return nil, fmt.Errorf("no netstack scenario named %s", strings.Join(only, ", "))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	metas := make([]*ScenarioMeta, len(sel))
	errs := make([]error, len(sel))
	sem := make(chan struct{}, max(parallel, 1))
	var wg sync.WaitGroup
	for i, sc := range sel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			for attempt := 0; attempt < 2; attempt++ {
				t0 := time.Now()
				m, err := RecordNetstackScenario(ctx, bins, sc, filepath.Join(out, sc.Name))
				if err == nil {
					logf("%-44s ok in %5.2fs: %d frames", sc.Name, time.Since(t0).Seconds(), m.Frames)
					metas[i], errs[i] = m, nil
					return
				}
				errs[i] = fmt.Errorf("%s: %w", sc.Name, err)
				logf("%-44s attempt %d failed: %v", sc.Name, attempt+1, err)
			}
		}()
	}
	wg.Wait()
	return metas, errors.Join(errs...)
}

func containsName(names []string, n string) bool {
	for _, x := range names {
		if strings.TrimSpace(x) == n {
			return true
		}
	}
	return false
}

// mixedTimeWait: two connections to one listener, A closed by the client first, B by the
// server first; then quiet for wait, past the server's TIME_WAIT and short of the client's.
func mixedTimeWait(wait time.Duration) func(*NSRun) error {
	return func(r *NSRun) error { return mixedTimeWaitRun(r, wait) }
}

func mixedTimeWaitRun(r *NSRun, wait time.Duration) error {
	l, err := r.Server.Listen(false, 80, 0)
	if err != nil {
		return err
	}
	if err := r.startCapture(); err != nil {
		return err
	}
	for i, clientFirst := range []bool{true, false} {
		c, err := r.dial(false, 80, fmt.Sprintf("conn %c", 'A'+i))
		if err != nil {
			return err
		}
		if err := c.c.WaitState(nsWait, "ESTABLISHED"); err != nil {
			return err
		}
		if c.s, _, err = l.Accept(nsWait); err != nil {
			return err
		}
		if err := r.exchange(c); err != nil {
			return err
		}
		if err := closeFirstOn(c, clientFirst); err != nil {
			return err
		}
	}
	time.Sleep(wait)
	r.conns[0].expect("TIME_WAIT", "CLOSED")
	r.conns[1].expect("CLOSED", "CLOSED")
	return nil
}

// nsSynRetries: the SYNs are dropped for 8 s; the capture shows the client stack's own
// retransmission schedule (noted in scenario.json).
func nsSynRetries(r *NSRun) error {
	if _, err := r.Server.Listen(false, 80, 0); err != nil {
		return err
	}
	if err := r.Lab.Firewall(r.Ctx, false, "-A", "FORWARD", "-i", RouterClientIface, "-p", "tcp", "--syn", "--dport", "80", "-j", "DROP"); err != nil {
		return err
	}
	if err := r.startCapture(); err != nil {
		return err
	}
	c, err := r.dial(false, 80, "syn-retries")
	if err != nil {
		return err
	}
	time.Sleep(8 * time.Second)
	if err := c.c.WaitState(0, "SYN_SENT"); err != nil {
		return err
	}
	c.expect("SYN_SENT", "CLOSED")
	r.atLeast(3, "SYNs (original + 2 retransmissions)", isSYN)
	r.check(func(info *CaptureInfo) error {
		r.notes = append(r.notes, "SYNs sent at (s after the first): "+sinceStart(filter(info, isSYN)))
		return nil
	})
	return nil
}

// nsChallengeACK: after an exchange, the router forges a RST from the client whose sequence
// number is in the server's window but 1000 past its RCV.NXT. RFC 5961 §3.2: the server must
// not reset; it answers with an ACK of RCV.NXT (a challenge ACK).
func nsChallengeACK(r *NSRun) error {
	c, err := r.connect(false, "challenge-ack", 0)
	if err != nil {
		return err
	}
	if err := r.exchange(c); err != nil {
		return err
	}
	time.Sleep(250 * time.Millisecond) // delayed ACKs out of the way
	nxt, _, err := (&Run{Lab: r.Lab}).NextSeq(c.CAddr, c.SAddr)
	if err != nil {
		return err
	}
	if _, err := r.Lab.InjectTCP(c.CAddr, c.SAddr, nxt+1000, 0, FlagRST, 0); err != nil {
		return err
	}
	time.Sleep(300 * time.Millisecond)
	if err := c.s.WaitState(0, "ESTABLISHED"); err != nil {
		return err
	}
	c.expect("ESTABLISHED", "ESTABLISHED")
	r.check(func(info *CaptureInfo) error {
		rst := -1
		for i, p := range info.TCP {
			if p.Has(FlagRST) && p.Src == c.CAddr {
				rst = i
			}
		}
		if rst < 0 {
			return fmt.Errorf("the forged RST is not in the capture")
		}
		for _, p := range info.TCP[rst+1:] {
			if p.Src == c.SAddr && p.Has(FlagACK) && p.PayloadLen == 0 && p.Ack == nxt {
				r.notes = append(r.notes, fmt.Sprintf("challenge ACK %s after the forged RST %s", p, info.TCP[rst]))
				return nil
			}
		}
		return fmt.Errorf("no challenge ACK (ack %d) from the server after the forged RST", nxt)
	})
	return nil
}
