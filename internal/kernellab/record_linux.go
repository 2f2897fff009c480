package kernellab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
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
}

// Run is the context of one scenario recording.
type Run struct {
	Ctx    context.Context
	Lab    *Lab
	Settle time.Duration // quiet time between the end of Play and stopping the capture

	dir      string
	capStart bool
	conns    []*Conn
	notes    []string
	checks   []func(*CaptureInfo) error
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
	return r.Lab.StartCapture(filepath.Join(r.dir, CaptureFile))
}

// Note adds a line to scenario.json's notes.
func (r *Run) Note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// Check registers a check of the finished capture (does the wire show what the scenario means?).
func (r *Run) Check(f func(*CaptureInfo) error) { r.checks = append(r.checks, f) }

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
	r.conns = append(r.conns, c)
	return c, nil
}

// Connect dials, waits for the handshake and accepts the connection on l.
func (r *Run) Connect(v6 bool, port uint16, l *Sock, what string, opts ...SockOpt) (*Conn, error) {
	c, err := r.Dial(v6, port, what, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.C.WaitState(r.Ctx, 3*time.Second, tcpEstablished); err != nil {
		return nil, err
	}
	s, err := l.Accept(r.Ctx, 3*time.Second, "server "+c.String())
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
		if _, err := c.S.Read(r.Ctx, len(req), waitLong); err != nil {
			return err
		}
	}
	if resp != "" {
		if err := c.S.Write(r.Ctx, []byte(resp)); err != nil {
			return err
		}
		if _, err := c.C.Read(r.Ctx, len(resp), waitLong); err != nil {
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
	if err := c.S.ReadEOF(r.Ctx, waitLong); err != nil {
		return err
	}
	if err := c.S.WaitState(r.Ctx, waitLong, tcpCloseWait); err != nil {
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
	if err := c.C.ReadEOF(r.Ctx, waitLong); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, waitLong, tcpCloseWait); err != nil {
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
	if err := c.S.ReadEOF(r.Ctx, waitLong); err != nil {
		return err
	}
	if err := c.S.Write(r.Ctx, []byte(httpResp)); err != nil {
		return err
	}
	if _, err := c.C.Read(r.Ctx, len(httpResp), waitLong); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, waitLong, tcpFinWait2); err != nil {
		return err
	}
	if err := c.S.WaitState(r.Ctx, waitLong, tcpCloseWait); err != nil {
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
	if err := c.C.ReadEOF(r.Ctx, waitLong); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, waitLong, tcpCloseWait); err != nil {
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
	if err := b.WaitState(r.Ctx, waitLong, tcpClose); err != nil {
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
	if err := c.C.ReadEOF(r.Ctx, waitLong); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, waitLong, tcpCloseWait); err != nil {
		return err
	}
	if err := c.C.Write(r.Ctx, []byte("one more thing\n")); err != nil {
		return err
	}
	if err := c.C.WaitState(r.Ctx, waitLong, tcpClose); err != nil {
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
	if err := c.C.WaitState(r.Ctx, waitLong, tcpClose); err != nil {
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

// RecordOptions tune RecordAll.
type RecordOptions struct {
	Only     []string // scenario names; empty means all
	Parallel int      // scenarios recorded at once (each in its own namespaces)
	Retries  int      // extra attempts for a scenario whose recording does not show its intent
	Logf     func(format string, args ...any)
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
	all := Scenarios()
	var sel []*Scenario
	if len(opt.Only) == 0 {
		sel = all
	} else {
		byName := map[string]*Scenario{}
		for _, s := range all {
			byName[s.Name] = s
		}
		for _, n := range opt.Only {
			s, ok := byName[strings.TrimSpace(n)]
			if !ok {
				return nil, fmt.Errorf("unknown scenario %q (have: %s)", n, strings.Join(ScenarioNames(), ", "))
			}
			sel = append(sel, s)
		}
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
					opt.Logf("%-28s ok in %5.2fs: %d frames, snapshot %s after last packet", sc.Name, time.Since(t0).Seconds(), m.Frames, m.SnapshotAfter)
					metas[i], errs[i] = m, nil
					return
				}
				errs[i] = fmt.Errorf("%s: %w", sc.Name, err)
				opt.Logf("%-28s attempt %d failed after %.2fs: %v", sc.Name, attempt+1, time.Since(t0).Seconds(), err)
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
		if tmp != "" {
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
	r := &Run{Ctx: ctx, Lab: lab, Settle: 150 * time.Millisecond, dir: tmp}
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
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	os.Chmod(filepath.Join(tmp, CaptureFile), 0o644)

	meta = &ScenarioMeta{
		Name: sc.Name, Description: sc.Description,
		ClientAddrs:  []string{ClientV4.String(), ClientV6.String()},
		ServerAddrs:  []string{ServerV4.String(), ServerV6.String()},
		Tap:          "router namespace, interface " + RouterClientIface + " (client-facing veth); tcpdump -U --immediate-mode -w, default snaplen",
		CaptureStart: lab.CaptureStart.UTC().Format(time.RFC3339Nano),
		CaptureEnd:   lab.CaptureEnd.UTC().Format(time.RFC3339Nano),
		Snapshot:     snap.UTC().Format(time.RFC3339Nano),
		Kernel:       kernelRelease(),
		TcpdumpStats: lab.CaptureStats,
		Notes:        r.notes,
		Offloads:     map[string]string{},
	}
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
	rowsC, err := ParseSS(strings.NewReader(files[SSClientFile]))
	if err != nil {
		return nil, err
	}
	rowsS, err := ParseSS(strings.NewReader(files[SSServerFile]))
	if err != nil {
		return nil, err
	}
	var problems []string
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
	for _, c := range r.conns {
		if !c.expected {
			problems = append(problems, fmt.Sprintf("%s: scenario did not state its expected outcome", c))
			continue
		}
		meta.Expect = append(meta.Expect, ExpectedConn{What: c.What, Client: c.CAddr.String(), Server: c.SAddr.String(),
			ClientState: c.ClientState, ServerState: c.ServerState})
		cs, cr := find(rowsC, c.CAddr, c.SAddr)
		ss, sr := find(rowsS, c.SAddr, c.CAddr)
		used[cr], used[sr] = true, true
		if cs != c.ClientState || ss != c.ServerState {
			problems = append(problems, fmt.Sprintf("%s: kernel shows client %s / server %s, scenario intends %s / %s",
				c, cs, ss, c.ClientState, c.ServerState))
		}
	}
	for _, rows := range [][]SSRow{rowsC, rowsS} {
		for i := range rows {
			if rows[i].State != "LISTEN" && !used[&rows[i]] {
				problems = append(problems, fmt.Sprintf("unexpected socket %s %s > %s", rows[i].State, rows[i].Local, rows[i].Peer))
			}
		}
	}
	info, err := ReadCapture(filepath.Join(tmp, CaptureFile))
	if err != nil {
		return nil, err
	}
	meta.Frames, meta.TCPSegments, meta.MaxFrameLen = info.Frames, len(info.TCP), info.MaxCapLen
	if info.Frames > 0 {
		meta.FirstPacket = info.First.Format(time.RFC3339Nano)
		meta.LastPacket = info.Last.Format(time.RFC3339Nano)
		gap := snap.Sub(info.Last)
		meta.SnapshotAfter = gap.Round(time.Millisecond).String()
		if gap > 2*time.Second {
			problems = append(problems, fmt.Sprintf("ss snapshot %v after the last packet (want < 2s)", gap))
		}
	}
	if info.MaxWireLen > 1514 {
		problems = append(problems, fmt.Sprintf("a captured frame is %d bytes: offloads still on?", info.MaxWireLen))
	}
	for _, chk := range r.checks {
		if err := chk(info); err != nil {
			problems = append(problems, "capture: "+err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("recording does not show the scenario's intent:\n  %s\nss client:\n%sss server:\n%s",
			strings.Join(problems, "\n  "), files[SSClientFile], files[SSServerFile])
	}
	b, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, ScenarioMetaFile), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755)
	tmp = ""
	return meta, nil
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
