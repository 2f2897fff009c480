package kernellab

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The netstack lab: the same topology, with gVisor's netstack (internal/netstackhost, its own
// Go module so that gVisor stays out of tcpstate's dependencies) in place of the kernel's TCP
// on the client side, the server side, or both. See NetstackScenarios.

// Stack names.
const (
	StackLinux    = "linux"
	StackNetstack = "netstack"
	StackLwIP     = "lwip"
)

// NetstackHostBinary builds internal/netstackhost (or takes $TCPSTATE_NETSTACKHOST) and returns
// the binary's path. The build is cached under the user cache directory by the hash of its
// sources, so only the first call after a change pays for compiling gVisor (~30 s cold).
func NetstackHostBinary(ctx context.Context) (string, error) {
	if p := os.Getenv("TCPSTATE_NETSTACKHOST"); p != "" {
		return p, nil
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate internal/netstackhost (set TCPSTATE_NETSTACKHOST to a built binary)")
	}
	src := filepath.Join(filepath.Dir(self), "..", "netstackhost")
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", fmt.Errorf("netstack host source: %w (set TCPSTATE_NETSTACKHOST to a built binary)", err)
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	bin := filepath.Join(cache, "tcpstate", "netstackhost-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build internal/netstackhost: %v\n%s", err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// Endpoint is one TCP endpoint of either stack, driven step by step by a scenario.
type Endpoint interface {
	Local() netip.AddrPort
	Accept(timeout time.Duration) (Endpoint, netip.AddrPort, error)
	// WaitState waits for one of the canonical states (ESTABLISHED, CLOSE_WAIT, ...).
	WaitState(timeout time.Duration, states ...string) error
	Write(n int) error
	WriteUntilBlocked() (int, error)
	Read(n int, timeout time.Duration) error
	ReadEOF(timeout time.Duration) error
	ShutdownWrite() error
	Close() error
	Linger0() error
	// Refused: the connection attempt ended with a RST (ECONNREFUSED).
	Refused() bool
}

// Host is one end of the lab: the namespace's kernel, or a netstack host that took over its veth.
type Host interface {
	Stack() string
	Listen(v6 bool, port uint16, rcvbuf int) (Endpoint, error)
	Dial(dst netip.AddrPort) (Endpoint, error)
	// SS is the host's view of its sockets, in the form of `ss -tan`.
	SS(ctx context.Context) (string, error)
	Close() error
}

// kernelHost is the namespace's own kernel.
type kernelHost struct {
	ns Netns
	mu sync.Mutex
	ss []*Sock
}

func (k *kernelHost) Stack() string { return StackLinux }

func (k *kernelHost) track(s *Sock) *Sock {
	k.mu.Lock()
	k.ss = append(k.ss, s)
	k.mu.Unlock()
	return s
}

func (k *kernelHost) Listen(v6 bool, port uint16, rcvbuf int) (Endpoint, error) {
	any := netip.IPv4Unspecified()
	if v6 {
		any = netip.IPv6Unspecified()
	}
	s, err := k.ns.NewSock(any, "listener")
	if err != nil {
		return nil, err
	}
	k.track(s)
	if err := s.SetInt(syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return nil, err
	}
	if v6 {
		if err := s.SetInt(syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 1); err != nil {
			return nil, err
		}
	}
	if rcvbuf > 0 {
		if err := s.SetInt(syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf); err != nil {
			return nil, err
		}
	}
	if err := s.Bind(netip.AddrPortFrom(any, port)); err != nil {
		return nil, err
	}
	return &kernelEP{s: s, ns: k.ns}, s.Listen(128)
}

func (k *kernelHost) Dial(dst netip.AddrPort) (Endpoint, error) {
	s, err := k.ns.NewSock(dst.Addr(), "client")
	if err != nil {
		return nil, err
	}
	k.track(s)
	return &kernelEP{s: s, ns: k.ns, peer: dst}, s.Connect(dst)
}

func (k *kernelHost) SS(ctx context.Context) (string, error) { return k.ns.Run(ctx, "ss", "-tan") }

func (k *kernelHost) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range k.ss {
		s.Close()
	}
	return nil
}

type kernelEP struct {
	s     *Sock
	ns    Netns
	local netip.AddrPort // fixed at connect/accept: a closed socket no longer says
	peer  netip.AddrPort
}

var canonicalToLinux = map[string]int{
	"ESTABLISHED": tcpEstablished, "SYN_SENT": tcpSynSent, "SYN_RECEIVED": tcpSynRecv,
	"FIN_WAIT_1": tcpFinWait1, "FIN_WAIT_2": tcpFinWait2, "TIME_WAIT": tcpTimeWait, "CLOSED": tcpClose,
	"CLOSE_WAIT": tcpCloseWait, "LAST_ACK": tcpLastAck, "LISTEN": tcpListen, "CLOSING": tcpClosing,
}

func (e *kernelEP) Local() netip.AddrPort {
	if !e.local.IsValid() {
		e.local = e.s.Local()
	}
	return e.local
}
func (e *kernelEP) Accept(d time.Duration) (Endpoint, netip.AddrPort, error) {
	s, err := e.s.Accept(context.Background(), d, "server")
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	return &kernelEP{s: s, ns: e.ns, local: s.Local(), peer: s.Peer()}, s.Peer(), nil
}
func (e *kernelEP) WaitState(d time.Duration, states ...string) error {
	if e.s.Closed() {
		// The application has let go: only ss still sees the connection (no row: CLOSED).
		var last string
		err := waitFor(context.Background(), d, "", func() (bool, error) {
			out, err := e.ns.Run(context.Background(), "ss", "-tan")
			if err != nil {
				return false, err
			}
			rows, err := ParseSS(strings.NewReader(out))
			if err != nil {
				return false, err
			}
			last = "CLOSED"
			if row, ok := lookupRow(rows, e.Local(), e.peer); ok {
				last = row.Canonical()
			}
			for _, s := range states {
				if s == last {
					return true, nil
				}
			}
			time.Sleep(5 * time.Millisecond)
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("%s > %s (closed): want %v, ss still shows %s: %w", e.Local(), e.peer, states, last, err)
		}
		return nil
	}
	var ns []int
	for _, s := range states {
		ns = append(ns, canonicalToLinux[s])
	}
	return e.s.WaitState(context.Background(), d, ns...)
}
func (e *kernelEP) Write(n int) error               { return e.s.Write(context.Background(), []byte(body(n))) }
func (e *kernelEP) WriteUntilBlocked() (int, error) { return e.s.WriteUntilBlocked() }
func (e *kernelEP) Read(n int, d time.Duration) error {
	_, err := e.s.Read(context.Background(), n, d)
	return err
}
func (e *kernelEP) ReadEOF(d time.Duration) error { return e.s.ReadEOF(context.Background(), d) }
func (e *kernelEP) ShutdownWrite() error          { return e.s.ShutdownWrite() }
func (e *kernelEP) Close() error                  { return e.s.Close() }
func (e *kernelEP) Linger0() error                { return e.s.Linger0() }
func (e *kernelEP) Refused() bool                 { return errors.Is(e.s.SoError(), syscall.ECONNREFUSED) }

// netstackHost is internal/netstackhost running in a namespace, driven over its stdin/stdout.
type netstackHost struct {
	stack  string // StackNetstack or StackLwIP (same protocol)
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr strings.Builder
	mu     sync.Mutex
	next   int
	where  string
}

// StartNetstack hands the namespace's veth (ifname) to a netstack host: the kernel's addresses
// are removed from it and IPv6 is turned off on it (so the kernel neither answers ARP/NDP nor
// resets connections to addresses it no longer has), and the host owns addrs instead.
func StartNetstack(ctx context.Context, bin string, ns Netns, ifname string, addrs []netip.Prefix, gws []netip.Addr, extra ...string) (Host, error) {
	if _, err := run(ctx, "ip", "-n", ns.Name, "addr", "flush", "dev", ifname); err != nil {
		return nil, err
	}
	if err := ns.Sysctl("net.ipv6.conf."+ifname+".disable_ipv6", "1"); err != nil {
		return nil, err
	}
	args := append([]string{"-iface", ifname}, extra...)
	for _, a := range addrs {
		args = append(args, "-addr", a.String())
	}
	for _, g := range gws {
		args = append(args, "-gw", g.String())
	}
	return startHost(ctx, StackNetstack, ns, ns.Command(context.Background(), bin, args...))
}

// startHost starts a host process that speaks internal/netstackhost's protocol.
func startHost(ctx context.Context, stack string, ns Netns, cmd *exec.Cmd) (Host, error) {
	h := &netstackHost{stack: stack, where: ns.Name, cmd: cmd}
	var err error
	if h.in, err = h.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	h.out = bufio.NewReader(stdout)
	h.cmd.Stderr = &lockedWriter{b: &h.stderr, mu: &h.mu}
	if err := h.cmd.Start(); err != nil {
		return nil, fmt.Errorf("netstack host: %w", err)
	}
	// The host answers once its stack runs; "ss" is a harmless first command.
	if _, err := h.SS(ctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

type lockedWriter struct {
	b  *strings.Builder
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (h *netstackHost) Stack() string { return h.stack }

// call sends one command and returns the text after "ok".
func (h *netstackHost) call(format string, args ...any) (string, error) {
	line := fmt.Sprintf(format, args...)
	if _, err := io.WriteString(h.in, line+"\n"); err != nil {
		return "", fmt.Errorf("netstack host in %s: %s: %w (stderr: %s)", h.where, line, err, h.errText())
	}
	reply, err := h.out.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("netstack host in %s: %s: no reply: %w (stderr: %s)", h.where, line, err, h.errText())
	}
	reply = strings.TrimRight(reply, "\n")
	if rest, ok := strings.CutPrefix(reply, "ok"); ok {
		return strings.TrimSpace(rest), nil
	}
	return "", fmt.Errorf("netstack %s: %s", line, strings.TrimPrefix(reply, "err "))
}

func (h *netstackHost) errText() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.TrimSpace(h.stderr.String())
}

func (h *netstackHost) id() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	return h.next
}

func (h *netstackHost) Listen(v6 bool, port uint16, rcvbuf int) (Endpoint, error) {
	any := netip.IPv4Unspecified()
	if v6 {
		any = netip.IPv6Unspecified()
	}
	e := &netstackEP{h: h, id: h.id(), local: netip.AddrPortFrom(any, port)}
	if _, err := h.call("listen %d %s %d", e.id, e.local, rcvbuf); err != nil {
		return nil, err
	}
	return e, nil
}

func (h *netstackHost) Dial(dst netip.AddrPort) (Endpoint, error) {
	e := &netstackEP{h: h, id: h.id()}
	out, err := h.call("dial %d %s", e.id, dst)
	if err != nil {
		return nil, err
	}
	e.local, err = netip.ParseAddrPort(out)
	return e, err
}

func (h *netstackHost) SS(ctx context.Context) (string, error) {
	if _, err := io.WriteString(h.in, "ss\n"); err != nil {
		return "", fmt.Errorf("netstack host in %s: ss: %w (stderr: %s)", h.where, err, h.errText())
	}
	var b strings.Builder
	for {
		line, err := h.out.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("netstack host in %s: ss: %w (stderr: %s)", h.where, err, h.errText())
		}
		if line == "end\n" {
			return b.String(), nil
		}
		b.WriteString(line)
	}
}

// Close stops the host (its stack, and every connection in it, vanish without a packet).
func (h *netstackHost) Close() error {
	if h.cmd == nil || h.cmd.Process == nil {
		return nil
	}
	h.in.Close()
	done := make(chan error, 1)
	go func() { done <- h.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		h.cmd.Process.Kill()
		<-done
	}
	h.cmd = nil
	return nil
}

type netstackEP struct {
	h     *netstackHost
	id    int
	local netip.AddrPort
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

func (e *netstackEP) Local() netip.AddrPort { return e.local }
func (e *netstackEP) Accept(d time.Duration) (Endpoint, netip.AddrPort, error) {
	n := &netstackEP{h: e.h, id: e.h.id()}
	out, err := e.h.call("accept %d %d %d", n.id, e.id, ms(d))
	if err != nil {
		return nil, netip.AddrPort{}, err
	}
	peer, err := netip.ParseAddrPort(out)
	if err != nil {
		return nil, peer, err
	}
	n.local = netip.AddrPortFrom(ServerAddr(peer.Addr().Is6()), e.local.Port())
	return n, peer, nil
}
func (e *netstackEP) WaitState(d time.Duration, states ...string) error {
	var ss []string
	for _, s := range states {
		ss = append(ss, linuxSSName[s])
	}
	_, err := e.h.call("wait %d %s %d", e.id, strings.Join(ss, ","), ms(d))
	return err
}
func (e *netstackEP) Write(n int) error {
	_, err := e.h.call("write %d %d", e.id, n)
	return err
}
func (e *netstackEP) WriteUntilBlocked() (int, error) {
	out, err := e.h.call("writeblocked %d", e.id)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(out)
}
func (e *netstackEP) Read(n int, d time.Duration) error {
	_, err := e.h.call("read %d %d %d", e.id, n, ms(d))
	return err
}
func (e *netstackEP) ReadEOF(d time.Duration) error {
	_, err := e.h.call("readeof %d %d", e.id, ms(d))
	return err
}
func (e *netstackEP) ShutdownWrite() error {
	_, err := e.h.call("shutdown %d", e.id)
	return err
}
func (e *netstackEP) Close() error {
	_, err := e.h.call("close %d", e.id)
	return err
}
func (e *netstackEP) Linger0() error {
	_, err := e.h.call("linger0 %d", e.id)
	return err
}
func (e *netstackEP) Refused() bool {
	out, err := e.h.call("lasterror %d", e.id)
	return err == nil && out == "refused"
}

// linuxSSName maps canonical names to ss's (the netstack host speaks ss's names); CLOSED is
// "CLOSE", the name the host gives an endpoint that has finished.
var linuxSSName = map[string]string{
	"LISTEN": "LISTEN", "SYN_SENT": "SYN-SENT", "SYN_RECEIVED": "SYN-RECV", "ESTABLISHED": "ESTAB",
	"FIN_WAIT_1": "FIN-WAIT-1", "FIN_WAIT_2": "FIN-WAIT-2", "CLOSE_WAIT": "CLOSE-WAIT",
	"CLOSING": "CLOSING", "LAST_ACK": "LAST-ACK", "TIME_WAIT": "TIME-WAIT", "CLOSED": "CLOSE",
}
