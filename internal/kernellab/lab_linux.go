package kernellab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"sort"
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
	delays   []*DelayLine
	injector int // raw socket in the router (0: none yet)
	dumps    []*tcpdumpProc
	capPath  string // the capture file the scenario sees
	capTap   string

	CaptureStart, CaptureEnd time.Time
	CaptureStats             string // tcpdump's closing statistics
	closed                   bool
}

// Where tcpdump runs (Scenario.Tap).
const (
	TapRouter       = "router"        // router namespace on rc: a tap in the middle of the path (default)
	TapRouterServer = "router-server" // router namespace on rs: a tap between the router and the server
	TapClient       = "client"        // client namespace on c0: tcpdump on the client host itself
	TapServer       = "server"        // server namespace on s0: tcpdump on the server host itself
	TapSpan         = "span"          // router namespace on rc and rs, merged into one file (SPAN duplicates)
)

// Taps lists the valid tap names.
var Taps = []string{TapRouter, TapRouterServer, TapClient, TapServer, TapSpan}

// TapDescription describes a tap for scenario.json.
func TapDescription(tap string) string {
	const opts = "tcpdump -U --immediate-mode -w, default snaplen"
	switch tap {
	case TapRouterServer:
		return "router namespace, interface " + RouterServerIface + " (server-facing veth); " + opts
	case TapClient:
		return "client namespace, interface " + ClientIface + " (the client host's own interface); " + opts
	case TapServer:
		return "server namespace, interface " + ServerIface + " (the server host's own interface); " + opts
	case TapSpan:
		return "router namespace, interfaces " + RouterClientIface + " and " + RouterServerIface + " captured separately and merged in time order (every forwarded packet twice, as from a SPAN port mirroring both); " + opts
	}
	return "router namespace, interface " + RouterClientIface + " (client-facing veth); " + opts
}

type tcpdumpProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	stderr bytes.Buffer
	path   string
	where  string
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

// StartHolderMatch starts a holder for the packets that match (see Holder) in the router.
func (l *Lab) StartHolderMatch(queue uint16, count int, maxHold time.Duration, what string, match func([]byte) bool) (*Holder, error) {
	h, err := l.Router.StartHolderMatch(queue, count, maxHold, what, match)
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

// tapPoints returns the namespaces and interfaces of a tap.
func (l *Lab) tapPoints(tap string) ([]Netns, []string, error) {
	switch tap {
	case "", TapRouter:
		return []Netns{l.Router}, []string{RouterClientIface}, nil
	case TapRouterServer:
		return []Netns{l.Router}, []string{RouterServerIface}, nil
	case TapClient:
		return []Netns{l.Client}, []string{ClientIface}, nil
	case TapServer:
		return []Netns{l.Server}, []string{ServerIface}, nil
	case TapSpan:
		return []Netns{l.Router, l.Router}, []string{RouterClientIface, RouterServerIface}, nil
	}
	return nil, nil, fmt.Errorf("unknown tap %q (have %s)", tap, strings.Join(Taps, ", "))
}

// StartCapture starts tcpdump at the tap (TapRouter when empty) writing path, and returns
// once tcpdump has opened its interface(s). A SPAN tap runs one tcpdump per interface; their
// files are merged into path when the capture stops.
func (l *Lab) StartCapture(path, tap string) error {
	nss, ifs, err := l.tapPoints(tap)
	if err != nil {
		return err
	}
	l.mu.Lock()
	if len(l.dumps) > 0 {
		l.mu.Unlock()
		return errors.New("capture already running")
	}
	l.capPath, l.capTap = path, tap
	l.mu.Unlock()
	for i := range nss {
		p := path
		if len(nss) > 1 {
			p = fmt.Sprintf("%s.%s.part", path, ifs[i])
		}
		if err := l.startTcpdump(nss[i], ifs[i], p); err != nil {
			l.StopCapture()
			return err
		}
	}
	// The packet sockets are open once tcpdump says so; give them a moment anyway.
	l.CaptureStart = time.Now()
	time.Sleep(20 * time.Millisecond)
	return nil
}

func (l *Lab) startTcpdump(ns Netns, ifname, path string) error {
	cmd := ns.Command(context.Background(), "tcpdump", "-i", ifname, "-U", "--immediate-mode", "-Z", "root", "-w", path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("tcpdump: %w", err)
	}
	td := &tcpdumpProc{cmd: cmd, done: make(chan struct{}), path: path, where: ns.Name + "/" + ifname}
	l.mu.Lock()
	l.dumps = append(l.dumps, td)
	l.mu.Unlock()
	ready := make(chan struct{})
	go func() {
		defer close(td.done)
		r := bufio.NewReader(stderr)
		once := false
		for {
			line, err := r.ReadString('\n')
			l.mu.Lock()
			td.stderr.WriteString(line)
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
	out := td.stderr.String()
	l.mu.Unlock()
	if !strings.Contains(out, "listening on") {
		return fmt.Errorf("tcpdump on %s did not start: %s", td.where, strings.TrimSpace(out))
	}
	return nil
}

// LiveCapture decodes what the running capture has written so far (all parts of a SPAN tap).
func (l *Lab) LiveCapture() (*CaptureInfo, error) {
	l.mu.Lock()
	var paths []string
	for _, d := range l.dumps {
		paths = append(paths, d.path)
	}
	l.mu.Unlock()
	all := &CaptureInfo{}
	for _, p := range paths {
		info, err := ReadLiveCapture(p)
		if err != nil {
			return nil, err
		}
		all.Frames += info.Frames
		all.TCP = append(all.TCP, info.TCP...)
		if !info.First.IsZero() && (all.First.IsZero() || info.First.Before(all.First)) {
			all.First = info.First
		}
		if info.Last.After(all.Last) {
			all.Last = info.Last
		}
	}
	sort.SliceStable(all.TCP, func(i, j int) bool { return all.TCP[i].Time.Before(all.TCP[j].Time) })
	return all, nil
}

// StopCapture stops tcpdump with SIGINT, waits for it to flush and exit, and merges the
// files of a SPAN tap.
func (l *Lab) StopCapture() error {
	l.mu.Lock()
	dumps := l.dumps
	l.dumps = nil
	l.mu.Unlock()
	if len(dumps) == 0 {
		return nil
	}
	l.CaptureEnd = time.Now()
	for _, td := range dumps {
		_ = td.cmd.Process.Signal(syscall.SIGINT)
	}
	var errs, stats []string
	for _, td := range dumps {
		waitErr := make(chan error, 1)
		go func() { <-td.done; waitErr <- td.cmd.Wait() }()
		var err error
		select {
		case err = <-waitErr:
		case <-time.After(10 * time.Second):
			_ = td.cmd.Process.Kill()
			err = fmt.Errorf("tcpdump did not stop on SIGINT; killed: %v", <-waitErr)
		}
		l.mu.Lock()
		out := td.stderr.String()
		l.mu.Unlock()
		var st []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "packets") {
				st = append(st, strings.TrimSpace(line))
			}
		}
		prefix := ""
		if len(dumps) > 1 {
			prefix = td.where + ": "
		}
		stats = append(stats, prefix+strings.Join(st, "; "))
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) && strings.Contains(out, "packets captured") {
				err = nil // tcpdump exits non-zero on signal with some builds; it flushed
			}
		}
		if m := droppedRE.FindStringSubmatch(out); err == nil && m != nil && m[1] != "0" {
			err = fmt.Errorf("tcpdump on %s dropped packets: %s", td.where, strings.Join(st, "; "))
		}
		if err != nil {
			errs = append(errs, err.Error())
		}
	}
	l.CaptureStats = strings.Join(stats, " | ")
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	if len(dumps) > 1 {
		var parts []string
		for _, td := range dumps {
			parts = append(parts, td.path)
		}
		if err := MergePcaps(l.capPath, parts...); err != nil {
			return err
		}
		for _, p := range parts {
			os.Remove(p)
		}
	}
	return nil
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
	delays := l.delays
	l.mu.Unlock()
	var errs []error
	for _, d := range delays {
		if err := d.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
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
	if l.injector > 0 {
		syscall.Close(l.injector)
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

// FirewallIn runs iptables (v6: ip6tables) with args inside namespace ns and returns its output.
func (l *Lab) FirewallIn(ctx context.Context, ns Netns, v6 bool, args ...string) (string, error) {
	bin := "iptables"
	if v6 {
		bin = "ip6tables"
	}
	return ns.Run(ctx, bin, append([]string{"-w", "5"}, args...)...)
}

// InjectTCP crafts an IPv4 TCP segment without options or payload (a forged RST, say) and
// sends it from the router namespace through a raw socket. It leaves the router as a packet
// the router originated (OUTPUT, routed by destination), whatever its source address. It
// returns the IP packet sent.
func (l *Lab) InjectTCP(src, dst netip.AddrPort, seq, ack uint32, flags uint8, win uint16) ([]byte, error) {
	if !src.Addr().Is4() || !dst.Addr().Is4() {
		return nil, errors.New("InjectTCP: IPv4 only")
	}
	l.mu.Lock()
	fd := l.injector
	l.mu.Unlock()
	if fd == 0 {
		err := l.Router.Do(func() error {
			var err error
			fd, err = syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.IPPROTO_RAW)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("raw socket in the router: %w", err)
		}
		l.mu.Lock()
		l.injector = fd
		l.mu.Unlock()
	}
	pkt := craftTCP4(src, dst, seq, ack, flags, win, uint16(time.Now().UnixNano()))
	if err := syscall.Sendto(fd, pkt, 0, &syscall.SockaddrInet4{Addr: dst.Addr().As4()}); err != nil {
		return nil, fmt.Errorf("inject: %w", err)
	}
	return pkt, nil
}

// craftTCP4 builds an IPv4 header (DF, TTL 64) and a 20-byte TCP header with checksums.
func craftTCP4(src, dst netip.AddrPort, seq, ack uint32, flags uint8, win, ipID uint16) []byte {
	b := make([]byte, 40)
	be := binary.BigEndian
	b[0], b[8], b[9] = 0x45, 64, syscall.IPPROTO_TCP
	be.PutUint16(b[2:], 40)
	be.PutUint16(b[4:], ipID)
	be.PutUint16(b[6:], 0x4000)
	s4, d4 := src.Addr().As4(), dst.Addr().As4()
	copy(b[12:], s4[:])
	copy(b[16:], d4[:])
	be.PutUint16(b[10:], inetChecksum(b[:20], 0))
	t := b[20:]
	be.PutUint16(t[0:], src.Port())
	be.PutUint16(t[2:], dst.Port())
	be.PutUint32(t[4:], seq)
	be.PutUint32(t[8:], ack)
	t[12], t[13] = 5<<4, flags
	be.PutUint16(t[14:], win)
	pseudo := uint32(be.Uint16(s4[0:])) + uint32(be.Uint16(s4[2:])) + uint32(be.Uint16(d4[0:])) + uint32(be.Uint16(d4[2:])) +
		syscall.IPPROTO_TCP + uint32(len(t))
	be.PutUint16(t[16:], inetChecksum(t, pseudo))
	return b
}

func inetChecksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
