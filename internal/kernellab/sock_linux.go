package kernellab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"time"
	"unsafe"
)

// Linux TCP states (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpSynSent     = 2
	tcpSynRecv     = 3
	tcpFinWait1    = 4
	tcpFinWait2    = 5
	tcpTimeWait    = 6
	tcpClose       = 7
	tcpCloseWait   = 8
	tcpLastAck     = 9
	tcpListen      = 10
	tcpClosing     = 11
)

var tcpStateNames = map[int]string{
	tcpEstablished: "ESTABLISHED", tcpSynSent: "SYN_SENT", tcpSynRecv: "SYN_RECEIVED",
	tcpFinWait1: "FIN_WAIT_1", tcpFinWait2: "FIN_WAIT_2", tcpTimeWait: "TIME_WAIT",
	tcpClose: "CLOSED", tcpCloseWait: "CLOSE_WAIT", tcpLastAck: "LAST_ACK",
	tcpListen: "LISTEN", tcpClosing: "CLOSING",
}

const pollEvery = 500 * time.Microsecond

// Sock is a kernel TCP socket (non-blocking) created in a namespace. It is driven with plain
// system calls so that every step (shutdown, linger 0, keepalive, ...) is explicit.
type Sock struct {
	fd     int
	Label  string
	closed bool
}

func sockaddr(ap netip.AddrPort) syscall.Sockaddr {
	if ap.Addr().Is4() {
		return &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func fromSockaddr(sa syscall.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port))
	}
	return netip.AddrPort{}
}

func family(a netip.Addr) int {
	if a.Is4() {
		return syscall.AF_INET
	}
	return syscall.AF_INET6
}

// NewSock creates a TCP socket of the family of addr inside the namespace.
func (n Netns) NewSock(addr netip.Addr, label string) (*Sock, error) {
	var s *Sock
	err := n.Do(func() error {
		fd, err := syscall.Socket(family(addr), syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_TCP)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		s = &Sock{fd: fd, Label: label}
		return nil
	})
	return s, err
}

func (s *Sock) String() string { return s.Label }

// SetInt sets an integer socket option.
func (s *Sock) SetInt(level, opt, v int) error {
	if err := syscall.SetsockoptInt(s.fd, level, opt, v); err != nil {
		return fmt.Errorf("%s: setsockopt(%d,%d,%d): %w", s.Label, level, opt, v, err)
	}
	return nil
}

// Bind binds the socket.
func (s *Sock) Bind(ap netip.AddrPort) error {
	if err := syscall.Bind(s.fd, sockaddr(ap)); err != nil {
		return fmt.Errorf("%s: bind %s: %w", s.Label, ap, err)
	}
	return nil
}

// Listen starts listening.
func (s *Sock) Listen(backlog int) error {
	if err := syscall.Listen(s.fd, backlog); err != nil {
		return fmt.Errorf("%s: listen: %w", s.Label, err)
	}
	return nil
}

// Connect starts a non-blocking connect; it returns at once (SYN_SENT or already refused).
func (s *Sock) Connect(ap netip.AddrPort) error {
	err := syscall.Connect(s.fd, sockaddr(ap))
	if err != nil && !errors.Is(err, syscall.EINPROGRESS) {
		return fmt.Errorf("%s: connect %s: %w", s.Label, ap, err)
	}
	return nil
}

// Local returns the socket's local address.
func (s *Sock) Local() netip.AddrPort {
	sa, err := syscall.Getsockname(s.fd)
	if err != nil {
		return netip.AddrPort{}
	}
	return fromSockaddr(sa)
}

// Peer returns the socket's peer address (zero if not connected).
func (s *Sock) Peer() netip.AddrPort {
	sa, err := syscall.Getpeername(s.fd)
	if err != nil {
		return netip.AddrPort{}
	}
	return fromSockaddr(sa)
}

// State returns the kernel's TCP state of the socket (TCP_INFO tcpi_state).
func (s *Sock) State() (int, error) {
	var buf [256]byte
	l := uint32(len(buf))
	_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(s.fd), syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	return int(buf[0]), nil
}

// SoError returns (and clears) the pending socket error.
func (s *Sock) SoError() error {
	v, err := syscall.GetsockoptInt(s.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err != nil {
		return err
	}
	if v != 0 {
		return syscall.Errno(v)
	}
	return nil
}

func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timeout after %v waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// WaitState waits until the socket is in one of the given states.
func (s *Sock) WaitState(ctx context.Context, timeout time.Duration, states ...int) error {
	var last int
	err := waitFor(ctx, timeout, "", func() (bool, error) {
		st, err := s.State()
		if err != nil {
			return false, err
		}
		last = st
		for _, w := range states {
			if st == w {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		var want []string
		for _, w := range states {
			want = append(want, tcpStateNames[w])
		}
		return fmt.Errorf("%s: want state %v, still %s: %w", s.Label, want, tcpStateNames[last], err)
	}
	return nil
}

// Accept waits for and accepts one connection.
func (s *Sock) Accept(ctx context.Context, timeout time.Duration, label string) (*Sock, error) {
	var c *Sock
	err := waitFor(ctx, timeout, s.Label+" accept", func() (bool, error) {
		fd, _, err := syscall.Accept4(s.fd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s: accept: %w", s.Label, err)
		}
		c = &Sock{fd: fd, Label: label}
		return true, nil
	})
	return c, err
}

// Write writes all of b (waiting while the send buffer is full, up to a few seconds).
func (s *Sock) Write(ctx context.Context, b []byte) error {
	for len(b) > 0 {
		var n int
		err := waitFor(ctx, 5*time.Second, s.Label+" write", func() (bool, error) {
			var err error
			n, err = syscall.Write(s.fd, b)
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("%s: write: %w", s.Label, err)
			}
			return true, nil
		})
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// WriteUntilBlocked writes until the send buffer is full (EAGAIN) and returns the byte count.
func (s *Sock) WriteUntilBlocked() (int, error) {
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = 'a' + byte(i%26)
	}
	total := 0
	for {
		n, err := syscall.Write(s.fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			return total, nil
		}
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return total, fmt.Errorf("%s: write: %w", s.Label, err)
		}
		total += n
	}
}

// TryWrite makes one write attempt and returns the kernel's answer (EPIPE, ECONNRESET, ...).
func (s *Sock) TryWrite(b []byte) (int, error) {
	return syscall.Write(s.fd, b)
}

// Read reads until n bytes arrived, EOF, or timeout; it returns what it got.
func (s *Sock) Read(ctx context.Context, n int, timeout time.Duration) ([]byte, error) {
	var got []byte
	buf := make([]byte, 65536)
	eof := false
	err := waitFor(ctx, timeout, fmt.Sprintf("%s read %d bytes", s.Label, n), func() (bool, error) {
		for len(got) < n {
			m, err := syscall.Read(s.fd, buf[:min(len(buf), n-len(got))])
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("%s: read: %w", s.Label, err)
			}
			if m == 0 {
				eof = true
				return true, nil
			}
			got = append(got, buf[:m]...)
		}
		return true, nil
	})
	if err == nil && eof && len(got) < n {
		err = fmt.Errorf("%s: EOF after %d of %d bytes", s.Label, len(got), n)
	}
	return got, err
}

// ReadEOF reads (and discards) until the peer's FIN has been consumed.
func (s *Sock) ReadEOF(ctx context.Context, timeout time.Duration) error {
	buf := make([]byte, 65536)
	return waitFor(ctx, timeout, s.Label+" EOF", func() (bool, error) {
		for {
			m, err := syscall.Read(s.fd, buf)
			if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
				return false, nil
			}
			if err != nil {
				return false, fmt.Errorf("%s: read: %w", s.Label, err)
			}
			if m == 0 {
				return true, nil
			}
		}
	})
}

// ShutdownWrite sends FIN but keeps the socket open (shutdown(SHUT_WR)).
func (s *Sock) ShutdownWrite() error {
	if err := syscall.Shutdown(s.fd, syscall.SHUT_WR); err != nil {
		return fmt.Errorf("%s: shutdown: %w", s.Label, err)
	}
	return nil
}

// Linger0 sets SO_LINGER {on, 0}: close() then aborts with RST.
func (s *Sock) Linger0() error {
	if err := syscall.SetsockoptLinger(s.fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1, Linger: 0}); err != nil {
		return fmt.Errorf("%s: SO_LINGER: %w", s.Label, err)
	}
	return nil
}

// Keepalive turns on SO_KEEPALIVE with the given idle time, interval and probe count (seconds).
func (s *Sock) Keepalive(idle, intvl, cnt int) error {
	for _, o := range [][3]int{
		{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, idle},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, intvl},
		{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, cnt},
	} {
		if err := s.SetInt(o[0], o[1], o[2]); err != nil {
			return err
		}
	}
	return nil
}

// Close closes the file descriptor (the kernel carries on with FIN, or RST under linger 0).
func (s *Sock) Close() error {
	if s == nil || s.closed {
		return nil
	}
	s.closed = true
	return syscall.Close(s.fd)
}

// Closed reports whether Close was called.
func (s *Sock) Closed() bool { return s.closed }
