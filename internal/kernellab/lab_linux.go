package kernellab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Interface names inside the namespaces (names are per namespace, so parallel labs never clash).
const (
	ClientIface       = "c0" // client namespace, towards the router
	RouterClientIface = "rc" // router, towards the client: the capture point (the tap)
	RouterServerIface = "rs" // router, towards the server
	ServerIface       = "s0" // server namespace, towards the router
)

// The lab's addresses (documentation ranges).
var (
	ClientV4       = netip.MustParseAddr("192.0.2.2")
	RouterClientV4 = netip.MustParseAddr("192.0.2.1")
	ServerV4       = netip.MustParseAddr("198.51.100.2")
	RouterServerV4 = netip.MustParseAddr("198.51.100.1")
	ClientV6       = netip.MustParseAddr("2001:db8:1::2")
	RouterClientV6 = netip.MustParseAddr("2001:db8:1::1")
	ServerV6       = netip.MustParseAddr("2001:db8:2::2")
	RouterServerV6 = netip.MustParseAddr("2001:db8:2::1")
)

// Lab is one client—router—server topology of three fresh network namespaces.
type Lab struct {
	Prefix                 string
	Client, Router, Server Netns
	Offloads               map[string]map[string]uint32 // interface -> feature -> value read back

	mu       sync.Mutex
	created  []Netns
	socks    []*Sock
	holders  []*Holder
	tcpdump  *exec.Cmd
	tdDone   chan struct{}
	tdStderr bytes.Buffer

	CaptureStart, CaptureEnd time.Time
	CaptureStats             string // tcpdump's closing statistics
	closed                   bool
}

// Preflight tells why the lab cannot run here (nil when it can).
func Preflight() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, veth, iptables, tcpdump)")
	}
	for _, b := range []string{"ip", "tcpdump", "iptables", "ip6tables", "ss"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found in PATH (make lab-deps installs tcpdump iptables iproute2)", b)
		}
	}
	if sysSetns == 0 {
		return fmt.Errorf("setns syscall number unknown on this architecture")
	}
	if _, err := os.Stat("/proc/thread-self/ns/net"); err != nil {
		return fmt.Errorf("no network namespace support: %v", err)
	}
	// Can we really make a namespace and use iptables in it (containers often cannot)?
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	probe := Netns{randomPrefix() + "-probe"}
	if _, err := run(ctx, "ip", "netns", "add", probe.Name); err != nil {
		return fmt.Errorf("cannot create a network namespace: %v", err)
	}
	defer run(context.Background(), "ip", "netns", "del", probe.Name)
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := probe.Run(ctx, bin, "-w", "5", "-S", "FORWARD"); err != nil {
			return fmt.Errorf("%s unusable in a network namespace: %v", bin, err)
		}
	}
	return nil
}

// NewLab builds the topology. On error everything already created is removed.
func NewLab(ctx context.Context) (lab *Lab, err error) {
	p := randomPrefix()
	lab = &Lab{Prefix: p, Client: Netns{p + "-c"}, Router: Netns{p + "-r"}, Server: Netns{p + "-s"}}
	defer func() {
		if err != nil {
			lab.Close()
			lab = nil
		}
	}()
	for _, n := range []Netns{lab.Client, lab.Router, lab.Server} {
		if _, err := os.Stat(netnsDir + "/" + n.Name); err == nil {
			return nil, fmt.Errorf("namespace %s already exists", n.Name)
		}
		if _, err := run(ctx, "ip", "netns", "add", n.Name); err != nil {
			return nil, err
		}
		lab.mu.Lock()
		lab.created = append(lab.created, n)
		lab.mu.Unlock()
		// Before any link exists: no IPv6 duplicate address detection, no router solicitations.
		for _, kv := range [][2]string{
			{"net.ipv6.conf.all.accept_dad", "0"}, {"net.ipv6.conf.default.accept_dad", "0"},
			{"net.ipv6.conf.all.router_solicitations", "0"}, {"net.ipv6.conf.default.router_solicitations", "0"},
		} {
			if err := n.Sysctl(kv[0], kv[1]); err != nil {
				return nil, fmt.Errorf("%s sysctl %s: %w", n.Name, kv[0], err)
			}
		}
	}
	for _, kv := range [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv6.conf.all.forwarding", "1"}} {
		if err := lab.Router.Sysctl(kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("router sysctl %s: %w", kv[0], err)
		}
	}
	steps := [][]string{
		{"link", "add", ClientIface, "netns", lab.Client.Name, "type", "veth", "peer", "name", RouterClientIface, "netns", lab.Router.Name},
		{"link", "add", ServerIface, "netns", lab.Server.Name, "type", "veth", "peer", "name", RouterServerIface, "netns", lab.Router.Name},
	}
	for _, s := range steps {
		if _, err := run(ctx, "ip", s...); err != nil {
			return nil, err
		}
	}
	type nsSteps struct {
		ns    Netns
		steps [][]string
	}
	plan := []nsSteps{
		{lab.Client, [][]string{
			{"link", "set", "lo", "up"},
			{"addr", "add", ClientV4.String() + "/24", "dev", ClientIface},
			{"addr", "add", ClientV6.String() + "/64", "dev", ClientIface, "nodad"},
			{"link", "set", ClientIface, "up"},
			{"route", "add", "default", "via", RouterClientV4.String()},
			{"route", "add", "default", "via", RouterClientV6.String()},
		}},
		{lab.Router, [][]string{
			{"link", "set", "lo", "up"},
			{"addr", "add", RouterClientV4.String() + "/24", "dev", RouterClientIface},
			{"addr", "add", RouterClientV6.String() + "/64", "dev", RouterClientIface, "nodad"},
			{"addr", "add", RouterServerV4.String() + "/24", "dev", RouterServerIface},
			{"addr", "add", RouterServerV6.String() + "/64", "dev", RouterServerIface, "nodad"},
			{"link", "set", RouterClientIface, "up"},
			{"link", "set", RouterServerIface, "up"},
		}},
		{lab.Server, [][]string{
			{"link", "set", "lo", "up"},
			{"addr", "add", ServerV4.String() + "/24", "dev", ServerIface},
			{"addr", "add", ServerV6.String() + "/64", "dev", ServerIface, "nodad"},
			{"link", "set", ServerIface, "up"},
			{"route", "add", "default", "via", RouterServerV4.String()},
			{"route", "add", "default", "via", RouterServerV6.String()},
		}},
	}
	for _, p := range plan {
		var batch strings.Builder
		for _, s := range p.steps {
			batch.WriteString(strings.Join(s, " ") + "\n")
		}
		cmd := exec.CommandContext(ctx, "ip", "-n", p.ns.Name, "-batch", "-")
		cmd.Stdin = strings.NewReader(batch.String())
		if _, err := runCmd(cmd); err != nil {
			return nil, err
		}
	}
	// A veth drops what it sends until the kernel's link watcher has activated it (qdisc
	// "noop" -> "noqueue", which can take up to a second): wait for that before any traffic.
	for _, x := range []struct {
		ns  Netns
		ifn string
	}{{lab.Client, ClientIface}, {lab.Router, RouterClientIface}, {lab.Router, RouterServerIface}, {lab.Server, ServerIface}} {
		if err := waitFor(ctx, 5*time.Second, x.ifn+" up", func() (bool, error) {
			out, err := run(ctx, "ip", "-n", x.ns.Name, "-o", "link", "show", "dev", x.ifn)
			if err != nil {
				return false, err
			}
			if strings.Contains(out, "state UP") && !strings.Contains(out, "qdisc noop") {
				return true, nil
			}
			time.Sleep(5 * time.Millisecond)
			return false, nil
		}); err != nil {
			return nil, err
		}
	}
	lab.Offloads = map[string]map[string]uint32{}
	for _, x := range []struct {
		ns  Netns
		if_ string
	}{{lab.Client, ClientIface}, {lab.Router, RouterClientIface}, {lab.Router, RouterServerIface}, {lab.Server, ServerIface}} {
		got, err := x.ns.DisableOffloads(x.if_)
		if err != nil {
			return nil, err
		}
		lab.Offloads[x.if_] = got
	}
	return lab, nil
}

// Track registers a socket to be closed at teardown.
func (l *Lab) Track(s *Sock) *Sock {
	l.mu.Lock()
	l.socks = append(l.socks, s)
	l.mu.Unlock()
	return s
}

// StartHolder starts an NFQUEUE packet holder in the router and registers it for teardown.
func (l *Lab) StartHolder(queue uint16, count int, maxHold time.Duration) (*Holder, error) {
	h, err := l.Router.StartHolder(queue, count, maxHold)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.holders = append(l.holders, h)
	l.mu.Unlock()
	return h, nil
}

// Firewall runs iptables (v6: ip6tables) with args inside the router namespace.
func (l *Lab) Firewall(ctx context.Context, v6 bool, args ...string) error {
	bin := "iptables"
	if v6 {
		bin = "ip6tables"
	}
	_, err := l.Router.Run(ctx, bin, append([]string{"-w", "5"}, args...)...)
	return err
}

// StartCapture starts tcpdump in the router on the client-facing interface and returns once
// tcpdump has opened the interface.
func (l *Lab) StartCapture(path string) error {
	cmd := l.Router.Command(context.Background(), "tcpdump", "-i", RouterClientIface, "-U", "--immediate-mode",
		"-Z", "root", "-w", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("tcpdump: %w", err)
	}
	l.mu.Lock()
	l.tcpdump, l.tdDone = cmd, make(chan struct{})
	l.mu.Unlock()
	ready := make(chan struct{})
	go func() {
		defer close(l.tdDone)
		r := bufio.NewReader(stderr)
		once := false
		for {
			line, err := r.ReadString('\n')
			l.mu.Lock()
			l.tdStderr.WriteString(line)
			l.mu.Unlock()
			if !once && strings.Contains(line, "listening on") {
				once = true
				close(ready)
			}
			if err != nil {
				if !once {
					close(ready)
				}
				io.Copy(io.Discard, r)
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
	}
	l.mu.Lock()
	out := l.tdStderr.String()
	l.mu.Unlock()
	if !strings.Contains(out, "listening on") {
		l.StopCapture()
		return fmt.Errorf("tcpdump did not start: %s", strings.TrimSpace(out))
	}
	// The packet socket is open once tcpdump says so; give it a moment anyway.
	l.CaptureStart = time.Now()
	time.Sleep(20 * time.Millisecond)
	return nil
}

// StopCapture stops tcpdump with SIGINT and waits for it to flush and exit.
func (l *Lab) StopCapture() error {
	l.mu.Lock()
	cmd, done := l.tcpdump, l.tdDone
	l.tcpdump = nil
	l.mu.Unlock()
	if cmd == nil {
		return nil
	}
	l.CaptureEnd = time.Now()
	_ = cmd.Process.Signal(syscall.SIGINT)
	waitErr := make(chan error, 1)
	go func() { <-done; waitErr <- cmd.Wait() }()
	var err error
	select {
	case err = <-waitErr:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		err = fmt.Errorf("tcpdump did not stop on SIGINT; killed: %v", <-waitErr)
	}
	l.mu.Lock()
	out := l.tdStderr.String()
	l.mu.Unlock()
	var stats []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "packets") {
			stats = append(stats, strings.TrimSpace(line))
		}
	}
	l.CaptureStats = strings.Join(stats, "; ")
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && strings.Contains(out, "packets captured") {
			err = nil // tcpdump exits non-zero on signal with some builds; it flushed
		}
	}
	if m := droppedRE.FindStringSubmatch(out); err == nil && m != nil && m[1] != "0" {
		err = fmt.Errorf("tcpdump dropped packets: %s", l.CaptureStats)
	}
	return err
}

var droppedRE = regexp.MustCompile(`(\d+) packets? dropped by kernel`)

// SS runs ss with args in a namespace.
func (l *Lab) SS(ctx context.Context, ns Netns, args ...string) (string, error) {
	return ns.Run(ctx, "ss", args...)
}

// Close tears everything down: holders, tcpdump, sockets, namespaces. Safe to call twice.
func (l *Lab) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	holders, socks, created := l.holders, l.socks, l.created
	l.mu.Unlock()
	var errs []error
	for _, h := range holders {
		if err := h.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := l.StopCapture(); err != nil {
		errs = append(errs, err)
	}
	for _, s := range socks {
		s.Close()
	}
	for i := len(created) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := run(ctx, "ip", "netns", "del", created[i].Name); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	return errors.Join(errs...)
}
