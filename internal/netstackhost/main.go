// Command netstackhost is a TCP host built on gVisor's netstack (gvisor.dev/gvisor/pkg/tcpip),
// a second TCP implementation, independent of the Linux kernel's, for tcpstate's lab.
//
// It runs inside a lab network namespace (`ip netns exec NS netstackhost -iface c0 ...`) and
// takes over that namespace's veth: it reads and writes Ethernet frames through an AF_PACKET
// socket bound to the interface (fdbased link endpoint, as gVisor's runsc does), answers ARP
// and neighbour discovery itself, and owns the addresses given with -addr (the lab removes
// them from the kernel's view of the veth first, so the kernel neither answers nor resets).
//
// The lab drives it one command per line on stdin and reads one reply line per command on
// stdout ("ok ..." or "err ..."); `ss` replies with its rows in the form of `ss -tan`, then
// "end". Commands (IDs are small integers the lab chooses):
//
//	listen ID ADDR:PORT [RCVBUF]     listening endpoint (backlog 128; [::] is IPv6-only)
//	dial ID DST                      non-blocking connect; replies "ok LOCAL"
//	accept ID LISTENER MS            wait up to MS ms for a connection; replies "ok PEER"
//	wait ID STATE[,STATE...] MS      wait for one of the states (ss names: ESTAB, CLOSE-WAIT...)
//	write ID N                       write N bytes (waiting while the send buffer is full)
//	writeblocked ID                  write until the send buffer is full; replies "ok N"
//	read ID N MS                     read N bytes; readeof ID MS: read until the peer's FIN
//	shutdown ID | close ID | linger0 ID | rcvbuf ID N
//	lasterror ID                     the endpoint's pending error ("ok refused", "ok none", ...)
//	state ID | ss | quit
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

const nicID = 1

func main() {
	iface := flag.String("iface", "", "the veth to take over (AF_PACKET)")
	var addrs, gws multi
	flag.Var(&addrs, "addr", "address/prefix this host owns (repeatable)")
	flag.Var(&gws, "gw", "default gateway (repeatable, one per family)")
	timeWait := flag.Duration("timewait", 0, "TIME_WAIT length (0: netstack's default, 60 s)")
	flag.Parse()
	if *iface == "" || len(addrs) == 0 {
		fmt.Fprintln(os.Stderr, "usage: netstackhost -iface IFACE -addr 192.0.2.2/24 [-addr 2001:db8:1::2/64] [-gw 192.0.2.1] [-gw 2001:db8:1::1]")
		os.Exit(2)
	}
	h, err := newHost(*iface, addrs, gws, *timeWait)
	if err != nil {
		fmt.Fprintf(os.Stderr, "netstackhost: %v\n", err)
		os.Exit(1)
	}
	h.serve(os.Stdin, os.Stdout)
}

type conn struct {
	ep    tcpip.Endpoint
	wq    *waiter.Queue
	local netip.AddrPort
	peer  netip.AddrPort
	listn bool
}

type host struct {
	s     *stack.Stack
	conns map[int]*conn
}

func toTCPIP(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.AsSlice()) }

func fromTCPIP(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip.Unmap()
}

func newHost(ifname string, addrs, gws []string, timeWait time.Duration) (*host, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		return nil, fmt.Errorf("bind AF_PACKET to %s: %w", ifname, err)
	}
	link, err := fdbased.New(&fdbased.Options{
		FDs: []int{fd}, MTU: uint32(ifc.MTU), EthernetHeader: true,
		Address: tcpip.LinkAddress(ifc.HardwareAddr), PacketDispatchMode: fdbased.RecvMMsg,
		IsPacketSocket: []bool{true},
	})
	if err != nil {
		return nil, fmt.Errorf("fdbased link endpoint: %w", err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol,
			ipv6.NewProtocolWithOptions(ipv6.Options{DADConfigs: stack.DADConfigurations{DupAddrDetectTransmits: 0}})},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	// As gVisor's runsc configures its stack (runsc/boot/loader.go): SACK on, receive buffer
	// auto-tuning on. Every timer is netstack's default.
	sack := tcpip.TCPSACKEnabled(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	mod := tcpip.TCPModerateReceiveBufferOption(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &mod)
	if timeWait > 0 {
		tw := tcpip.TCPTimeWaitTimeoutOption(timeWait)
		if e := s.SetTransportProtocolOption(tcp.ProtocolNumber, &tw); e != nil {
			return nil, fmt.Errorf("TIME_WAIT %v: %v", timeWait, e)
		}
	}
	if e := s.CreateNIC(nicID, link); e != nil {
		return nil, fmt.Errorf("create NIC: %v", e)
	}
	var routes []tcpip.Route
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return nil, err
		}
		proto := ipv4.ProtocolNumber
		if p.Addr().Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: tcpip.AddressWithPrefix{Address: toTCPIP(p.Addr()), PrefixLen: p.Bits()}}
		if e := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); e != nil {
			return nil, fmt.Errorf("add address %s: %v", a, e)
		}
		routes = append(routes, tcpip.Route{Destination: pa.AddressWithPrefix.Subnet(), NIC: nicID})
	}
	for _, g := range gws {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, err
		}
		dst := header.IPv4EmptySubnet
		if a.Is6() {
			dst = header.IPv6EmptySubnet
		}
		routes = append(routes, tcpip.Route{Destination: dst, Gateway: toTCPIP(a), NIC: nicID})
	}
	s.SetRouteTable(routes)
	return &host{s: s, conns: map[int]*conn{}}, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (h *host) serve(in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "quit" {
			fmt.Fprintln(w, "ok")
			w.Flush()
			return
		}
		if f[0] == "ss" {
			w.WriteString(h.ss())
			fmt.Fprintln(w, "end")
			w.Flush()
			continue
		}
		reply, err := h.do(f)
		if err != nil {
			fmt.Fprintf(w, "err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Fprintf(w, "ok %s\n", reply)
		}
		w.Flush()
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func ms(s string) time.Duration { return time.Duration(atoi(s)) * time.Millisecond }

func (h *host) get(id string) (*conn, error) {
	c, ok := h.conns[atoi(id)]
	if !ok {
		return nil, fmt.Errorf("no endpoint %s", id)
	}
	return c, nil
}

func (h *host) newEP(a netip.Addr) (tcpip.Endpoint, *waiter.Queue, error) {
	proto := ipv4.ProtocolNumber
	if a.Is6() {
		proto = ipv6.ProtocolNumber
	}
	wq := new(waiter.Queue)
	ep, e := h.s.NewEndpoint(tcp.ProtocolNumber, proto, wq)
	if e != nil {
		return nil, nil, fmt.Errorf("new endpoint: %v", e)
	}
	return ep, wq, nil
}

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	fa := tcpip.FullAddress{Port: ap.Port()}
	if !ap.Addr().IsUnspecified() {
		fa.Addr = toTCPIP(ap.Addr())
	}
	return fa
}

// poll calls f every 500 µs until it reports done or d has passed.
func poll(d time.Duration, what string, f func() (bool, error)) error {
	end := time.Now().Add(d)
	for {
		ok, err := f()
		if err != nil || ok {
			return err
		}
		if time.Now().After(end) {
			return fmt.Errorf("timeout after %v waiting for %s", d, what)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

func (h *host) do(f []string) (string, error) {
	arg := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	switch f[0] {
	case "listen":
		ap, err := netip.ParseAddrPort(arg(2))
		if err != nil {
			return "", err
		}
		ep, wq, err := h.newEP(ap.Addr())
		if err != nil {
			return "", err
		}
		if ap.Addr().Is6() {
			ep.SocketOptions().SetV6Only(true)
		}
		ep.SocketOptions().SetReuseAddress(true)
		if n := atoi(arg(3)); n > 0 {
			// Before Listen: the listener hands its receive window to every connection.
			ep.SocketOptions().SetReceiveBufferSize(int64(n), true)
		}
		if e := ep.Bind(fullAddr(ap)); e != nil {
			return "", fmt.Errorf("bind %s: %v", ap, e)
		}
		if e := ep.Listen(128); e != nil {
			return "", fmt.Errorf("listen: %v", e)
		}
		h.conns[atoi(arg(1))] = &conn{ep: ep, wq: wq, local: ap, listn: true}
		return "", nil
	case "dial":
		dst, err := netip.ParseAddrPort(arg(2))
		if err != nil {
			return "", err
		}
		ep, wq, err := h.newEP(dst.Addr())
		if err != nil {
			return "", err
		}
		if e := ep.Connect(fullAddr(dst)); e != nil {
			if _, ok := e.(*tcpip.ErrConnectStarted); !ok {
				return "", fmt.Errorf("connect %s: %v", dst, e)
			}
		}
		la, e := ep.GetLocalAddress()
		if e != nil {
			return "", fmt.Errorf("local address: %v", e)
		}
		c := &conn{ep: ep, wq: wq, local: netip.AddrPortFrom(fromTCPIP(la.Addr), la.Port), peer: dst}
		h.conns[atoi(arg(1))] = c
		return c.local.String(), nil
	case "accept":
		l, err := h.get(arg(2))
		if err != nil {
			return "", err
		}
		var c *conn
		err = poll(ms(arg(3)), "accept", func() (bool, error) {
			var pa tcpip.FullAddress
			nep, nwq, e := l.ep.Accept(&pa)
			if _, ok := e.(*tcpip.ErrWouldBlock); ok {
				return false, nil
			}
			if e != nil {
				return false, fmt.Errorf("accept: %v", e)
			}
			la, _ := nep.GetLocalAddress()
			c = &conn{ep: nep, wq: nwq, local: netip.AddrPortFrom(fromTCPIP(la.Addr), la.Port), peer: netip.AddrPortFrom(fromTCPIP(pa.Addr), pa.Port)}
			return true, nil
		})
		if err != nil {
			return "", err
		}
		h.conns[atoi(arg(1))] = c
		return c.peer.String(), nil
	}
	c, err := h.get(arg(1))
	if err != nil {
		return "", err
	}
	switch f[0] {
	case "state":
		return ssName(c.ep.State()), nil
	case "wait":
		want := strings.Split(arg(2), ",")
		var last string
		err := poll(ms(arg(3)), arg(2), func() (bool, error) {
			last = ssName(c.ep.State())
			if last == "" { // error, or never connected: no socket in ss, CLOSED
				last = "CLOSE"
			}
			for _, w := range want {
				if w == last {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return "", fmt.Errorf("still %s: %v", last, err)
		}
		return last, nil
	case "write":
		n := atoi(arg(2))
		b := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), n/26+1)[:n]
		err := poll(5*time.Second, "write", func() (bool, error) {
			if len(b) == 0 {
				return true, nil
			}
			var r bytes.Reader
			r.Reset(b)
			m, e := c.ep.Write(&r, tcpip.WriteOptions{})
			if _, ok := e.(*tcpip.ErrWouldBlock); ok {
				return false, nil
			}
			if e != nil {
				return false, fmt.Errorf("write: %v", e)
			}
			b = b[m:]
			return len(b) == 0, nil
		})
		return "", err
	case "writeblocked":
		total := int64(0)
		chunk := bytes.Repeat([]byte("a"), 4096)
		for {
			var r bytes.Reader
			r.Reset(chunk)
			m, e := c.ep.Write(&r, tcpip.WriteOptions{})
			total += m
			if _, ok := e.(*tcpip.ErrWouldBlock); ok {
				return strconv.FormatInt(total, 10), nil
			}
			if e != nil {
				return "", fmt.Errorf("write: %v", e)
			}
		}
	case "read", "readeof":
		n, d := atoi(arg(2)), ms(arg(3))
		if f[0] == "readeof" {
			n, d = 1<<62, ms(arg(2))
		}
		got := 0
		eof := false
		err := poll(d, f[0], func() (bool, error) {
			for got < n {
				var buf bytes.Buffer
				res, e := c.ep.Read(&buf, tcpip.ReadOptions{})
				if _, ok := e.(*tcpip.ErrWouldBlock); ok {
					return false, nil
				}
				if _, ok := e.(*tcpip.ErrClosedForReceive); ok {
					eof = true
					return true, nil
				}
				if e != nil {
					return false, fmt.Errorf("read: %v", e)
				}
				got += res.Count
			}
			return true, nil
		})
		if err == nil && f[0] == "read" && eof && got < n {
			err = fmt.Errorf("EOF after %d of %d bytes", got, n)
		}
		return strconv.Itoa(got), err
	case "shutdown":
		if e := c.ep.Shutdown(tcpip.ShutdownWrite); e != nil {
			return "", fmt.Errorf("shutdown: %v", e)
		}
		return "", nil
	case "close":
		c.ep.Close()
		return "", nil
	case "linger0":
		c.ep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true, Timeout: 0})
		return "", nil
	case "rcvbuf":
		c.ep.SocketOptions().SetReceiveBufferSize(int64(atoi(arg(2))), true)
		return "", nil
	case "lasterror":
		switch e := c.ep.LastError(); e.(type) {
		case nil:
			return "none", nil
		case *tcpip.ErrConnectionRefused:
			return "refused", nil
		case *tcpip.ErrConnectionReset:
			return "reset", nil
		case *tcpip.ErrTimeout:
			return "timeout", nil
		default:
			return strings.ReplaceAll(e.String(), " ", "_"), nil
		}
	}
	return "", errors.New("unknown command " + f[0])
}

// ssName is a netstack endpoint state as `ss` prints a Linux socket in that state (netstack
// numbers its protocol states as Linux's include/net/tcp_states.h). Netstack's internal
// states (initial, bound, connecting, error) have no ss row: "" (connecting is SYN-SENT).
func ssName(st uint32) string {
	switch tcp.EndpointState(st) {
	case tcp.StateEstablished:
		return "ESTAB"
	case tcp.StateSynSent, tcp.StateConnecting:
		return "SYN-SENT"
	case tcp.StateSynRecv:
		return "SYN-RECV"
	case tcp.StateFinWait1:
		return "FIN-WAIT-1"
	case tcp.StateFinWait2:
		return "FIN-WAIT-2"
	case tcp.StateTimeWait:
		return "TIME-WAIT"
	case tcp.StateCloseWait:
		return "CLOSE-WAIT"
	case tcp.StateLastAck:
		return "LAST-ACK"
	case tcp.StateListen:
		return "LISTEN"
	case tcp.StateClosing:
		return "CLOSING"
	case tcp.StateClose:
		return "CLOSE"
	}
	return ""
}

func ssAddr(ap netip.AddrPort, wildPort bool) string {
	port := strconv.Itoa(int(ap.Port()))
	if wildPort {
		port = "*"
	}
	if ap.Addr().Is6() {
		return "[" + ap.Addr().String() + "]:" + port
	}
	return ap.Addr().String() + ":" + port
}

// ss lists this host's TCP endpoints as `ss -tan` lists a kernel's sockets: every endpoint the
// lab opened or accepted, and every endpoint still registered with the stack (connections
// not yet accepted, closed ones lingering in FIN_WAIT or TIME_WAIT). Closed endpoints have no
// row, as closed kernel sockets have none.
func (h *host) ss() string {
	type row struct {
		state       string
		local, peer string
		listen      bool
	}
	seen := map[tcpip.Endpoint]bool{}
	var rows []row
	add := func(ep tcpip.Endpoint, local, peer netip.AddrPort, listen bool) {
		if seen[ep] {
			return
		}
		seen[ep] = true
		st := ssName(ep.State())
		if st == "" || st == "CLOSE" {
			return
		}
		if listen || st == "LISTEN" {
			any := netip.IPv4Unspecified()
			if local.Addr().Is6() {
				any = netip.IPv6Unspecified()
			}
			rows = append(rows, row{st, ssAddr(local, false), ssAddr(netip.AddrPortFrom(any, 0), true), true})
			return
		}
		rows = append(rows, row{st, ssAddr(local, false), ssAddr(peer, false), false})
	}
	ids := make([]int, 0, len(h.conns))
	for id := range h.conns {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		c := h.conns[id]
		add(c.ep, c.local, c.peer, c.listn)
	}
	for _, list := range [][]stack.TransportEndpoint{h.s.RegisteredEndpoints(), h.s.CleanupEndpoints()} {
		for _, te := range list {
			ep, ok := te.(*tcp.Endpoint)
			if !ok {
				continue
			}
			info, ok := ep.Info().(*stack.TransportEndpointInfo)
			if !ok {
				continue
			}
			id := info.ID
			local := netip.AddrPortFrom(fromTCPIP(id.LocalAddress), id.LocalPort)
			peer := netip.AddrPortFrom(fromTCPIP(id.RemoteAddress), id.RemotePort)
			add(ep, local, peer, false)
		}
	}
	var b strings.Builder
	b.WriteString("State      Recv-Q Send-Q Local Address:Port  Peer Address:Port Process\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%-10s 0      0      %s %s\n", r.state, r.local, r.peer)
	}
	return b.String()
}
