package kernellab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Scenario is one recording: Play sets things up, calls r.StartCapture() at the moment the
// tap should start seeing packets, and drives the traffic. The recorder then waits r.Settle,
// stops the capture, and snapshots ss in both end namespaces while every socket is still open.
type Scenario struct {
	Name        string
	Description string // one sentence: what happens
	Play        func(r *Run) error
	Tap         string       // where tcpdump runs (Tap* constants; TapRouter when empty)
	Slow        bool         // takes long: TestKernelFresh leaves it out unless TCPSTATE_KERNEL_SLOW=1
	Edit        *CaptureEdit // the committed capture is an edited copy of what the tap recorded
}

// CaptureEdit turns the recorded capture into the committed one: packets removed (lost before
// the tap: delivered, but not in the capture) and/or every packet written twice (SPAN
// duplicates). The ss truth is that of the real traffic. Checks registered by Play run on the
// capture as recorded.
type CaptureEdit struct {
	What      string
	Remove    func(info *CaptureInfo) ([]Packet, error) // TCP segments to remove
	Duplicate bool
}

// WithTap returns a copy of the scenario recorded at another tap, named name-at-<tap>.
func (s *Scenario) WithTap(tap string) *Scenario {
	c := *s
	c.Tap = tap
	c.Name = s.Name + "-at-" + tap
	where := map[string]string{
		TapClient:       "tcpdump runs on the client host itself (client namespace, its own interface)",
		TapServer:       "tcpdump runs on the server host itself (server namespace, its own interface)",
		TapRouterServer: "tcpdump runs in the router on its server-facing interface",
		TapSpan:         "the capture merges both router interfaces, so every forwarded packet is in it twice",
		TapRouter:       "tcpdump runs in the router on its client-facing interface",
	}[tap]
	c.Description = strings.TrimSuffix(s.Description, ".") + "; " + where + "."
	return &c
}

// Run is the context of one scenario recording.
type Run struct {
	Ctx    context.Context
	Lab    *Lab
	Settle time.Duration // quiet time between the end of Play and stopping the capture
	Wait   time.Duration // how long the helpers wait for each step (default 3 s)
	Tap    string
	// FinalAt: the final ss snapshot is taken long after the last packet, once kernel timers
	// have run out; the tool is asked for the states at the snapshot instant (--at), not at
	// the end of the capture.
	FinalAt bool

	mu       sync.Mutex
	dir      string
	capStart bool
	conns    []*Conn
	notes    []string
	checks   []func(*CaptureInfo) error
	snaps    []AtSnapshot
}

func (r *Run) wait() time.Duration {
	if r.Wait > 0 {
		return r.Wait
	}
	return waitLong
}

// Conn is one client connection of a scenario (S is nil when nothing was accepted).
type Conn struct {
	What                     string
	C, S                     *Sock
	CAddr, SAddr             netip.AddrPort
	ClientState, ServerState string // expected kernel states (canonical)
	expected                 bool
}

func (c *Conn) String() string { return fmt.Sprintf("%s %s > %s", c.What, c.CAddr, c.SAddr) }

// SockOpt is applied to a socket before bind/connect/listen.
type SockOpt func(*Sock) error

// RcvBuf sets SO_RCVBUF (the kernel doubles it).
func RcvBuf(n int) SockOpt {
	return func(s *Sock) error { return s.SetInt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, n) }
}

// SndBuf sets SO_SNDBUF (the kernel doubles it).
func SndBuf(n int) SockOpt {
	return func(s *Sock) error { return s.SetInt(syscall.SOL_SOCKET, syscall.SO_SNDBUF, n) }
}

// ServerAddr and ClientAddr return the lab address of the given family.
func ServerAddr(v6 bool) netip.Addr {
	if v6 {
		return ServerV6
	}
	return ServerV4
}

func ClientAddr(v6 bool) netip.Addr {
	if v6 {
		return ClientV6
	}
	return ClientV4
}

// StartCapture starts tcpdump on the tap; traffic before this call is not in the capture.
func (r *Run) StartCapture() error {
	if r.capStart {
		return errors.New("capture already started")
	}
	r.capStart = true
	return r.Lab.StartCapture(filepath.Join(r.dir, CaptureFile), r.Tap)
}

// Note adds a line to scenario.json's notes.
func (r *Run) Note(format string, args ...any) {
	r.mu.Lock()
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// Check registers a check of the finished capture (does the wire show what the scenario means?).
func (r *Run) Check(f func(*CaptureInfo) error) {
	r.mu.Lock()
	r.checks = append(r.checks, f)
	r.mu.Unlock()
}

// Sleep waits d (or until the run is cancelled).
func (r *Run) Sleep(d time.Duration) error {
	select {
	case <-r.Ctx.Done():
		return r.Ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Listen opens a listening socket in the server namespace on the wildcard address of the
// family (IPv6 sockets are V6ONLY).
func (r *Run) Listen(v6 bool, port uint16, opts ...SockOpt) (*Sock, error) {
	any := netip.IPv4Unspecified()
	if v6 {
		any = netip.IPv6Unspecified()
	}
	s, err := r.Lab.Server.NewSock(any, fmt.Sprintf("listener %s", netip.AddrPortFrom(any, port)))
	if err != nil {
		return nil, err
	}
	r.Lab.Track(s)
	if err := s.SetInt(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return nil, err
	}
	if v6 {
		if err := s.SetInt(syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1); err != nil {
			return nil, err
		}
	}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if err := s.Bind(netip.AddrPortFrom(any, port)); err != nil {
		return nil, err
	}
	return s, s.Listen(128)
}

// Dial starts a non-blocking connect from the client namespace to the server's port.
func (r *Run) Dial(v6 bool, port uint16, what string, opts ...SockOpt) (*Conn, error) {
	dst := netip.AddrPortFrom(ServerAddr(v6), port)
	s, err := r.Lab.Client.NewSock(dst.Addr(), "client "+what)
	if err != nil {
		return nil, err
	}
	r.Lab.Track(s)
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if err := s.Connect(dst); err != nil {
		return nil, err
	}
	c := &Conn{What: what, C: s, CAddr: s.Local(), SAddr: dst}
	s.Label = "client " + c.String()
	r.AddConn(c)
	return c, nil
}

// AddConn registers a connection the scenario made itself (it must state its outcome).
func (r *Run) AddConn(c *Conn) {
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
}

// ReuseAddr sets SO_REUSEADDR.
func ReuseAddr() SockOpt {
	return func(s *Sock) error { return s.SetInt(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) }
}

// BindTo binds the socket to a local address (give it after the options that bind needs).
func BindTo(ap netip.AddrPort) SockOpt {
	return func(s *Sock) error { return s.Bind(ap) }
}

// Connect dials, waits for the handshake and accepts the connection on l.
func (r *Run) Connect(v6 bool, port uint16, l *Sock, what string, opts ...SockOpt) (*Conn, error) {
	c, err := r.Dial(v6, port, what, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpEstablished); err != nil {
		return nil, err
	}
	s, err := l.Accept(r.Ctx, r.wait(), "server "+c.String())
	if err != nil {
		return nil, err
	}
	r.Lab.Track(s)
	if s.Peer() != c.CAddr {
		return nil, fmt.Errorf("accepted %s, expected the connection from %s", s.Peer(), c.CAddr)
	}
	c.S = s
	return c, nil
}

// Expect records the kernel states the scenario intends for c (canonical names).
func (r *Run) Expect(c *Conn, client, server string) {
	c.ClientState, c.ServerState, c.expected = client, server, true
}

const waitLong = 3 * time.Second

// Exchange sends req from the client and resp from the server (each read in full).
func (r *Run) Exchange(c *Conn, req, resp string) error {
	if req != "" {
		if err := c.C.Write(r.Ctx, []byte(req)); err != nil {
			return err
		}
		if _, err := c.S.Read(r.Ctx, len(req), r.wait()); err != nil {
			return err
		}
	}
	if resp != "" {
		if err := c.S.Write(r.Ctx, []byte(resp)); err != nil {
			return err
		}
		if _, err := c.C.Read(r.Ctx, len(resp), r.wait()); err != nil {
			return err
		}
	}
	return nil
}

const (
	httpReq  = "GET / HTTP/1.0\r\nHost: lab\r\n\r\n"
	httpResp = "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n"
)

// CloseClientFirst: the client closes, then the server (client TIME_WAIT).
func (r *Run) CloseClientFirst(c *Conn) error {
	if err := c.C.Close(); err != nil {
		return err
	}
	if err := c.S.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.S.WaitState(r.Ctx, r.wait(), tcpCloseWait); err != nil {
		return err
	}
	r.Expect(c, "TIME_WAIT", "CLOSED")
	return c.S.Close()
}

// CloseServerFirst: the server closes, then the client (server TIME_WAIT).
func (r *Run) CloseServerFirst(c *Conn) error {
	if err := c.S.Close(); err != nil {
		return err
	}
	if err := c.C.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpCloseWait); err != nil {
		return err
	}
	r.Expect(c, "CLOSED", "TIME_WAIT")
	return c.C.Close()
}

// HalfClose: the client sends its request and shutdown(SHUT_WR); the server reads to EOF,
// answers, and never closes (client FIN_WAIT_2, server CLOSE_WAIT).
func (r *Run) HalfClose(c *Conn) error {
	if err := c.C.Write(r.Ctx, []byte(httpReq)); err != nil {
		return err
	}
	if err := c.C.ShutdownWrite(); err != nil {
		return err
	}
	if err := c.S.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.S.Write(r.Ctx, []byte(httpResp)); err != nil {
		return err
	}
	if _, err := c.C.Read(r.Ctx, len(httpResp), r.wait()); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpFinWait2); err != nil {
		return err
	}
	if err := c.S.WaitState(r.Ctx, r.wait(), tcpCloseWait); err != nil {
		return err
	}
	r.Expect(c, "FIN_WAIT_2", "CLOSE_WAIT")
	return nil
}

// ServerClosesClientNever: the server answers and closes; the client reads to EOF and keeps
// its socket open (client CLOSE_WAIT, server FIN_WAIT_2).
func (r *Run) ServerClosesClientNever(c *Conn) error {
	if err := r.Exchange(c, httpReq, httpResp); err != nil {
		return err
	}
	if err := c.S.Close(); err != nil {
		return err
	}
	if err := c.C.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpCloseWait); err != nil {
		return err
	}
	r.Expect(c, "CLOSE_WAIT", "FIN_WAIT_2")
	return nil
}

// Abort closes one side with SO_LINGER 0 (RST); the other side's socket stays open, CLOSED.
func (r *Run) Abort(c *Conn, byClient bool) error {
	a, b := c.C, c.S
	if !byClient {
		a, b = b, a
	}
	if err := a.Linger0(); err != nil {
		return err
	}
	if err := a.Close(); err != nil {
		return err
	}
	if err := b.WaitState(r.Ctx, r.wait(), tcpClose); err != nil {
		return err
	}
	r.Expect(c, "CLOSED", "CLOSED")
	return nil
}

// DataAfterClose: the server closes fully; the client (CLOSE_WAIT) writes anyway and the
// server's kernel answers with RST.
func (r *Run) DataAfterClose(c *Conn) error {
	if err := c.S.Close(); err != nil {
		return err
	}
	if err := c.C.ReadEOF(r.Ctx, r.wait()); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpCloseWait); err != nil {
		return err
	}
	if err := c.C.Write(r.Ctx, []byte("one more thing\n")); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpClose); err != nil {
		return err
	}
	r.Expect(c, "CLOSED", "CLOSED")
	return nil
}

// Refused dials a port without listener and waits for the RST.
func (r *Run) Refused(v6 bool, port uint16, what string) (*Conn, error) {
	c, err := r.Dial(v6, port, what)
	if err != nil {
		return nil, err
	}
	if err := c.C.WaitState(r.Ctx, r.wait(), tcpClose); err != nil {
		return nil, err
	}
	if err := c.C.SoError(); !errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%s: connect error %v, want ECONNREFUSED", c, err)
	}
	r.Expect(c, "CLOSED", "CLOSED")
	return c, nil
}

// DropSYNs makes the router drop SYNs to port (after the tap has seen them).
func (r *Run) DropSYNs(v6 bool, port uint16) error {
	return r.Lab.Firewall(r.Ctx, v6, "-A", "FORWARD", "-i", RouterClientIface, "-p", "tcp", "--syn",
		"--dport", fmt.Sprint(port), "-j", "DROP")
}

// Want is what a scenario intends the kernel to show for one connection at a snapshot.
type Want struct {
	C              *Conn
	Client, Server string // canonical
}

// W is shorthand for a Want.
func W(c *Conn, client, server string) Want { return Want{c, client, server} }

// quietFor is how long the tap must have been silent, with no retransmission or probe timer
// armed on either host, before an at-snapshot: longer than the longest delayed ACK (200 ms).
const quietFor = 250 * time.Millisecond

// Quiesce waits until nothing is in flight: no TCP packet on the tap for quietFor (counted
// from the call at the earliest) and no retransmission or zero-window-probe timer armed in
// either end namespace (`ss -tano`). It returns the time of the last TCP packet on the tap.
func (r *Run) Quiesce(timeout time.Duration) (time.Time, error) {
	var last time.Time
	var why string
	// What the scenario did just before may not be in tcpdump's file yet: count the quiet time
	// from the call at the earliest.
	called := time.Now()
	err := waitFor(r.Ctx, timeout, "quiescence", func() (bool, error) {
		info, err := r.Lab.LiveCapture()
		if err != nil {
			return false, err
		}
		last = r.Lab.CaptureStart
		if n := len(info.TCP); n > 0 && info.TCP[n-1].Time.After(last) {
			last = info.TCP[n-1].Time
		}
		from := last
		if called.After(from) {
			from = called
		}
		if d := time.Since(from); d < quietFor {
			why = fmt.Sprintf("last packet %v ago", d.Round(time.Millisecond))
			time.Sleep(min(quietFor-d, 50*time.Millisecond))
			return false, nil
		}
		for _, ns := range []Netns{r.Lab.Client, r.Lab.Server} {
			out, err := r.Lab.SS(r.Ctx, ns, "-tano")
			if err != nil {
				return false, err
			}
			if strings.Contains(out, "timer:(on") || strings.Contains(out, "timer:(persist") {
				why = "a timer is armed in " + ns.Name
				time.Sleep(20 * time.Millisecond)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		err = fmt.Errorf("%w (%s)", err, why)
	}
	return last, err
}

// Snapshot waits for quiescence, then takes `ss -tan` in both end namespaces: the truth for
// `tcpstate --at` at that instant. want states the kernel states the scenario intends for
// every connection made so far; the recording fails when ss shows otherwise.
func (r *Run) Snapshot(label string, intended ...Want) error {
	last, err := r.Quiesce(2 * r.wait())
	if err != nil {
		return fmt.Errorf("snapshot %q: %w", label, err)
	}
	return r.takeSnapshot(label, last, true, intended...)
}

// takeSnapshot takes the ss of both ends now. quiet: nothing was in flight (Snapshot), and the
// capture must show no packet around the instant; otherwise packets may be on their way
// (SnapshotInFlight) and last is zero.
func (r *Run) takeSnapshot(label string, last time.Time, quiet bool, intended ...Want) error {
	t0 := time.Now()
	cOut, err := r.Lab.SS(r.Ctx, r.Lab.Client, "-tan")
	if err != nil {
		return err
	}
	sOut, err := r.Lab.SS(r.Ctx, r.Lab.Server, "-tan")
	if err != nil {
		return err
	}
	t1 := time.Now()
	r.mu.Lock()
	n := len(r.snaps) + 1
	r.mu.Unlock()
	cf, sf := SnapshotFiles(n)
	for f, content := range map[string]string{cf: cOut, sf: sOut} {
		if err := os.WriteFile(filepath.Join(r.dir, f), []byte(content), 0o644); err != nil {
			return err
		}
	}
	rowsC, err := ParseSS(strings.NewReader(cOut))
	if err != nil {
		return err
	}
	rowsS, err := ParseSS(strings.NewReader(sOut))
	if err != nil {
		return err
	}
	var wants []want
	for _, w := range intended {
		wants = append(wants, want{w.C, w.Client, w.Server})
	}
	exp, problems := checkIntent(wants, rowsC, rowsS)
	if len(problems) > 0 {
		return fmt.Errorf("snapshot %d (%s) does not show the scenario's intent:\n  %s\nss client:\n%sss server:\n%s",
			n, label, strings.Join(problems, "\n  "), cOut, sOut)
	}
	quietBefore := "packets in flight"
	if quiet {
		quietBefore = t0.Sub(last).Round(time.Millisecond).String()
	}
	r.mu.Lock()
	r.snaps = append(r.snaps, AtSnapshot{N: n, Label: label, Time: t0.UTC().Format(time.RFC3339Nano),
		SSDone: t1.UTC().Format(time.RFC3339Nano), ClientFile: cf, ServerFile: sf,
		QuietBefore: quietBefore, Expect: exp})
	r.mu.Unlock()
	if !quiet {
		return nil
	}
	// Afterwards: the capture must show nothing from shortly before the instant until ss was
	// done (what the scenario does after that may follow at once).
	r.Check(func(info *CaptureInfo) error {
		for _, p := range info.TCP {
			if p.Time.After(t0.Add(-100*time.Millisecond)) && p.Time.Before(t1) {
				return fmt.Errorf("snapshot %d: packet %s on the tap %v after its instant: not quiescent", n, p, p.Time.Sub(t0))
			}
		}
		return nil
	})
	return nil
}

type want struct {
	c              *Conn
	client, server string
}

// checkIntent compares what the scenario intends with ss rows of both ends. When a 4-tuple was
// used by several connections, only the last can have a socket; earlier ones must be intended
// CLOSED on both ends. Every non-LISTEN row must belong to an intended connection.
func checkIntent(wants []want, rowsC, rowsS []SSRow) ([]ExpectedConn, []string) {
	var problems []string
	var exp []ExpectedConn
	used := map[*SSRow]bool{}
	find := func(rows []SSRow, local, peer netip.AddrPort) (string, *SSRow) {
		if local.Port() == 0 {
			return "CLOSED", nil
		}
		for i := range rows {
			if rows[i].State != "LISTEN" && rows[i].Local.AddrPort() == local && rows[i].Peer.AddrPort() == peer {
				return rows[i].Canonical(), &rows[i]
			}
		}
		return "CLOSED", nil
	}
	lastOf := map[tuple]int{}
	for i, w := range wants {
		lastOf[mkTuple(w.c.CAddr, w.c.SAddr)] = i
	}
	for i, w := range wants {
		c := w.c
		exp = append(exp, ExpectedConn{What: c.What, Client: c.CAddr.String(), Server: c.SAddr.String(),
			ClientState: w.client, ServerState: w.server})
		if lastOf[mkTuple(c.CAddr, c.SAddr)] != i {
			if w.client != "CLOSED" || w.server != "CLOSED" {
				problems = append(problems, fmt.Sprintf("%s: its 4-tuple is reused later, so it can only be CLOSED on both ends", c))
			}
			continue
		}
		cs, cr := find(rowsC, c.CAddr, c.SAddr)
		ss, sr := find(rowsS, c.SAddr, c.CAddr)
		used[cr], used[sr] = true, true
		if cs != w.client || ss != w.server {
			problems = append(problems, fmt.Sprintf("%s: kernel shows client %s / server %s, scenario intends %s / %s",
				c, cs, ss, w.client, w.server))
		}
	}
	for _, rows := range [][]SSRow{rowsC, rowsS} {
		for i := range rows {
			if rows[i].State != "LISTEN" && !used[&rows[i]] {
				problems = append(problems, fmt.Sprintf("unexpected socket %s %s > %s", rows[i].State, rows[i].Local, rows[i].Peer))
			}
		}
	}
	return exp, problems
}

// RecordOptions tune RecordAll.
type RecordOptions struct {
	Only     []string // scenario names; empty means all
	Parallel int      // scenarios recorded at once (each in its own namespaces)
	Retries  int      // extra attempts for a scenario whose recording does not show its intent
	Tap      string   // record the selected scenarios at this tap instead, as <name>-at-<tap>
	SkipSlow bool     // leave out the scenarios marked Slow (unless named in Only)
	Logf     func(format string, args ...any)
}

// SelectScenarios resolves RecordOptions.Only, Tap and SkipSlow to the scenarios to record
// and the names left out as slow.
func SelectScenarios(opt RecordOptions) (sel []*Scenario, skipped []string, err error) {
	all := Scenarios()
	if len(opt.Only) == 0 {
		for _, s := range all {
			if opt.SkipSlow && s.Slow {
				skipped = append(skipped, s.Name)
				continue
			}
			sel = append(sel, s)
		}
	} else {
		byName := map[string]*Scenario{}
		for _, s := range all {
			byName[s.Name] = s
		}
		for _, n := range opt.Only {
			s, ok := byName[strings.TrimSpace(n)]
			if !ok {
				return nil, nil, fmt.Errorf("unknown scenario %q (have: %s)", n, strings.Join(ScenarioNames(), ", "))
			}
			sel = append(sel, s)
		}
	}
	if opt.Tap != "" {
		if !slices.Contains(Taps, opt.Tap) {
			return nil, nil, fmt.Errorf("unknown tap %q (have %s)", opt.Tap, strings.Join(Taps, ", "))
		}
		for i, s := range sel {
			if s.Tap != opt.Tap && !(s.Tap == "" && opt.Tap == TapRouter) {
				sel[i] = s.WithTap(opt.Tap)
			}
		}
	}
	return sel, skipped, nil
}

// RecordAll records the selected scenarios into out/<name>/.
func RecordAll(ctx context.Context, out string, opt RecordOptions) ([]*ScenarioMeta, error) {
	if err := Preflight(); err != nil {
		return nil, err
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	if opt.Parallel < 1 {
		opt.Parallel = 1
	}
	sel, skipped, err := SelectScenarios(opt)
	if err != nil {
		return nil, err
	}
	if len(skipped) > 0 {
		opt.Logf("left out %d slow scenario(s) (their committed recordings are still checked): %s", len(skipped), strings.Join(skipped, ", "))
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}
	metas := make([]*ScenarioMeta, len(sel))
	errs := make([]error, len(sel))
	sem := make(chan struct{}, opt.Parallel)
	var wg sync.WaitGroup
	for i, sc := range sel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			for attempt := 0; attempt <= opt.Retries; attempt++ {
				if ctx.Err() != nil {
					if errs[i] == nil {
						errs[i] = fmt.Errorf("%s: %w", sc.Name, ctx.Err())
					}
					return
				}
				t0 := time.Now()
				m, err := RecordScenario(ctx, sc, filepath.Join(out, sc.Name))
				if err == nil {
					opt.Logf("%-34s ok in %5.2fs: %d frames, snapshot %s after last packet", sc.Name, time.Since(t0).Seconds(), m.Frames, m.SnapshotAfter)
					metas[i], errs[i] = m, nil
					return
				}
				errs[i] = fmt.Errorf("%s: %w", sc.Name, err)
				opt.Logf("%-34s attempt %d failed after %.2fs: %v", sc.Name, attempt+1, time.Since(t0).Seconds(), err)
			}
		}()
	}
	wg.Wait()
	return metas, errors.Join(errs...)
}

// ScenarioNames lists the scenario names in recording order.
func ScenarioNames() []string {
	var n []string
	for _, s := range Scenarios() {
		n = append(n, s.Name)
	}
	return n
}

// RecordScenario records one scenario into dir (replaced only when the recording succeeded).
func RecordScenario(ctx context.Context, sc *Scenario, dir string) (meta *ScenarioMeta, err error) {
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
	r := &Run{Ctx: ctx, Lab: lab, Settle: 150 * time.Millisecond, dir: tmp, Tap: sc.Tap}
	if err := sc.Play(r); err != nil {
		return nil, fmt.Errorf("play: %w", err)
	}
	if !r.capStart {
		return nil, errors.New("scenario never started the capture")
	}
	if err := r.Sleep(r.Settle); err != nil {
		return nil, err
	}
	if err := lab.StopCapture(); err != nil {
		return nil, err
	}
	// The snapshot: right after tcpdump stopped, while every socket is still open.
	snap := time.Now()
	files := map[string]string{}
	for _, x := range []struct {
		ns   Netns
		file string
		args []string
	}{
		{lab.Client, SSClientFile, []string{"-tan"}}, {lab.Server, SSServerFile, []string{"-tan"}},
		{lab.Client, SSClientTimers, []string{"-tano"}}, {lab.Server, SSServerTimers, []string{"-tano"}},
	} {
		out, err := lab.SS(ctx, x.ns, x.args...)
		if err != nil {
			return nil, err
		}
		files[x.file] = out
	}
	if err := writeTruth(tmp, files); err != nil {
		return nil, err
	}

	meta = baseMeta(sc.Name, sc.Description, sc.Tap, lab, snap)
	meta.Notes, meta.Snapshots, meta.Slow, meta.FinalAt = r.notes, r.snaps, sc.Slow, r.FinalAt
	meta.Duplicates = sc.Tap == TapSpan || (sc.Edit != nil && sc.Edit.Duplicate)
	meta.Offloads = map[string]string{}
	for ifn, f := range lab.Offloads {
		var on []string
		for k, v := range f {
			if v != 0 {
				on = append(on, k)
			}
		}
		sort.Strings(on)
		meta.Offloads[ifn] = "off: tso gso gro sg tx-checksum"
		if len(on) > 0 {
			meta.Offloads[ifn] += "; still on: " + strings.Join(on, " ")
		}
	}
	// Does the kernel show what the scenario intends?
	var problems, unstated []string
	var wants []want
	for _, c := range r.conns {
		if !c.expected {
			unstated = append(unstated, fmt.Sprintf("%s: scenario did not state its expected outcome", c))
			continue
		}
		wants = append(wants, want{c, c.ClientState, c.ServerState})
	}
	if meta.Expect, problems, err = judgeIntent(wants, files); err != nil {
		return nil, err
	}
	problems = append(unstated, problems...)
	info, more, err := judgeCapture(tmp, meta, snap, r.checks)
	if err != nil {
		return nil, err
	}
	if gap := snap.Sub(info.Last); info.Frames > 0 && gap > 2*time.Second && !r.FinalAt {
		problems = append(problems, fmt.Sprintf("ss snapshot %v after the last packet (want < 2s)", gap))
	}
	problems = append(problems, more...)
	if sc.Edit != nil && len(problems) == 0 {
		em := &EditMeta{What: sc.Edit.What, Duplicated: sc.Edit.Duplicate, OriginalFrames: info.Frames}
		if sc.Edit.Remove != nil {
			pkts, err := sc.Edit.Remove(info)
			if err != nil {
				problems = append(problems, "capture edit: "+err.Error())
			}
			for _, p := range pkts {
				em.RemovedPackets = append(em.RemovedPackets, p.N)
				em.Removed = append(em.Removed, p.String())
			}
		}
		if len(problems) == 0 {
			if err := EditPcap(filepath.Join(tmp, CaptureFile), em.RemovedPackets, em.Duplicated); err != nil {
				return nil, err
			}
			meta.Edit = em
			if info, err = ReadCapture(filepath.Join(tmp, CaptureFile)); err != nil {
				return nil, err
			}
		}
	}
	meta.Frames, meta.TCPSegments, meta.MaxFrameLen = info.Frames, len(info.TCP), info.MaxCapLen
	meta.Notes = r.notes
	if len(problems) > 0 {
		return nil, fmt.Errorf("recording does not show the scenario's intent:\n  %s\nss client:\n%sss server:\n%s",
			strings.Join(problems, "\n  "), files[SSClientFile], files[SSServerFile])
	}
	if err := commitRecording(tmp, dir, meta); err != nil {
		return nil, err
	}
	tmp = ""
	return meta, nil
}

// The steps every recorder shares (the kernel's RecordScenario, RecordNetstackScenario).

// writeTruth writes the ss snapshots (file name → content) beside the capture in tmp.
func writeTruth(tmp string, files map[string]string) error {
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	os.Chmod(filepath.Join(tmp, CaptureFile), 0o644)
	return nil
}

// baseMeta is what every scenario.json says of a recording: the scenario, the lab's
// addresses, the tap, the capture's span and the snapshot instant.
func baseMeta(name, description, tap string, lab *Lab, snap time.Time) *ScenarioMeta {
	return &ScenarioMeta{
		Name: name, Description: description,
		ClientAddrs:  []string{ClientV4.String(), ClientV6.String()},
		ServerAddrs:  []string{ServerV4.String(), ServerV6.String()},
		Tap:          TapDescription(tap),
		CaptureStart: lab.CaptureStart.UTC().Format(time.RFC3339Nano),
		CaptureEnd:   lab.CaptureEnd.UTC().Format(time.RFC3339Nano),
		Snapshot:     snap.UTC().Format(time.RFC3339Nano),
		Kernel:       kernelRelease(),
		TcpdumpStats: lab.CaptureStats,
	}
}

// judgeIntent holds the ss snapshots (files) against what the scenario expected of each
// connection: the expectations for scenario.json, and what does not hold.
func judgeIntent(wants []want, files map[string]string) ([]ExpectedConn, []string, error) {
	rowsC, err := ParseSS(strings.NewReader(files[SSClientFile]))
	if err != nil {
		return nil, nil, err
	}
	rowsS, err := ParseSS(strings.NewReader(files[SSServerFile]))
	if err != nil {
		return nil, nil, err
	}
	exp, problems := checkIntent(wants, rowsC, rowsS)
	return exp, problems, nil
}

// judgeCapture reads the recorded capture, notes its span in meta and runs the scenario's
// capture checks: what does not hold.
func judgeCapture(tmp string, meta *ScenarioMeta, snap time.Time, checks []func(*CaptureInfo) error) (*CaptureInfo, []string, error) {
	info, err := ReadCapture(filepath.Join(tmp, CaptureFile))
	if err != nil {
		return nil, nil, err
	}
	var problems []string
	if info.Frames > 0 {
		meta.FirstPacket = info.First.Format(time.RFC3339Nano)
		meta.LastPacket = info.Last.Format(time.RFC3339Nano)
		meta.SnapshotAfter = snap.Sub(info.Last).Round(time.Millisecond).String()
	}
	if info.MaxWireLen > 1514 {
		problems = append(problems, fmt.Sprintf("a captured frame is %d bytes: offloads still on?", info.MaxWireLen))
	}
	for _, chk := range checks {
		if err := chk(info); err != nil {
			problems = append(problems, "capture: "+err.Error())
		}
	}
	return info, problems, nil
}

// commitRecording writes scenario.json into tmp and puts tmp in dir's place.
func commitRecording(tmp, dir string, meta *ScenarioMeta) error {
	b, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, ScenarioMetaFile), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	os.Chmod(dir, 0o755)
	return nil
}

func kernelRelease() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return ""
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return "Linux " + string(b)
}
