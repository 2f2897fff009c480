package kernellab

import (
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// A minimal nfnetlink_queue client (include/uapi/linux/netfilter/nfnetlink_queue.h), used to
// hold packets in the router: netem is not available on every kernel, NFQUEUE usually is.
const (
	nfnlSubsysQueue  = 3
	nfqnlMsgPacket   = 0
	nfqnlMsgVerdict  = 1
	nfqnlMsgConfig   = 2
	nfqaCfgCmd       = 1
	nfqaCfgParams    = 2
	nfqaPacketHdr    = 1
	nfqaPayload      = 10
	nfqaVerdictHdr   = 2
	nfqnlCfgCmdBind  = 1
	nfqnlCfgCmdUnbnd = 2
	nfqnlCopyPacket  = 2
	nfAccept         = 1
)

var ne = binary.NativeEndian

func nlAttr(typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b := make([]byte, (l+3)&^3)
	ne.PutUint16(b[0:], uint16(l))
	ne.PutUint16(b[2:], typ)
	copy(b[4:], data)
	return b
}

func nfqMsg(msgType uint16, flags uint16, seq uint32, queue uint16, attrs ...[]byte) []byte {
	body := []byte{syscall.AF_UNSPEC, 0, byte(queue >> 8), byte(queue)} // nfgenmsg, res_id big endian
	for _, a := range attrs {
		body = append(body, a...)
	}
	b := make([]byte, 16, 16+len(body))
	ne.PutUint32(b[0:], uint32(16+len(body)))
	ne.PutUint16(b[4:], nfnlSubsysQueue<<8|msgType)
	ne.PutUint16(b[6:], flags)
	ne.PutUint32(b[8:], seq)
	return append(b, body...)
}

// Holder receives the TCP packets that an iptables NFQUEUE rule sends to its queue. It lets
// them through until it sees a matching packet (a FIN by default); from then on it holds every
// packet until it holds Count matching ones (or MaxHold passed), releases all held packets in
// arrival order, and lets every later packet through. Holding everything (not only the
// matching packets) keeps the router from reordering: an ACK answering the first released FIN
// cannot overtake the second. Used to make FINs (or SYNs) cross.
type Holder struct {
	fd      int
	queue   uint16
	count   int
	maxHold time.Duration
	match   func(ip []byte) bool
	what    string

	mu       sync.Mutex
	held     []uint32
	fins     int
	first    time.Time
	released bool
	events   []string
	stop     chan struct{}
	done     chan struct{}
	err      error
}

// StartHolder binds queue number queue in the namespace and starts holding packets from the
// first FIN until it holds count FINs.
func (n Netns) StartHolder(queue uint16, count int, maxHold time.Duration) (*Holder, error) {
	return n.StartHolderMatch(queue, count, maxHold, "FIN", tcpFIN)
}

// StartHolderMatch is StartHolder for packets that match (what names them in the events).
func (n Netns) StartHolderMatch(queue uint16, count int, maxHold time.Duration, what string, match func(ip []byte) bool) (*Holder, error) {
	h := &Holder{queue: queue, count: count, maxHold: maxHold, match: match, what: what, stop: make(chan struct{}), done: make(chan struct{})}
	err := n.Do(func() error {
		fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("netlink socket: %w", err)
		}
		h.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Holder, error) { syscall.Close(h.fd); return nil, err }
	if err := syscall.Bind(h.fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		return fail(fmt.Errorf("netlink bind: %w", err))
	}
	if err := syscall.SetsockoptTimeval(h.fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &syscall.Timeval{Usec: 20000}); err != nil {
		return fail(err)
	}
	cmd := nlAttr(nfqaCfgCmd, []byte{nfqnlCfgCmdBind, 0, 0, syscall.AF_INET})
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, 128) // enough for the IP and TCP headers
	params[4] = nfqnlCopyPacket
	for seq, m := range [][]byte{
		nfqMsg(nfqnlMsgConfig, syscall.NLM_F_REQUEST|syscall.NLM_F_ACK, 1, queue, cmd),
		nfqMsg(nfqnlMsgConfig, syscall.NLM_F_REQUEST|syscall.NLM_F_ACK, 2, queue, nlAttr(nfqaCfgParams, params)),
	} {
		if err := syscall.Sendto(h.fd, m, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
			return fail(fmt.Errorf("nfqueue config: %w", err))
		}
		if err := h.readAck(uint32(seq + 1)); err != nil {
			return fail(fmt.Errorf("nfqueue config (is NFQUEUE supported?): %w", err))
		}
	}
	go h.loop()
	return h, nil
}

func (h *Holder) readAck(seq uint32) error {
	buf := make([]byte, 8192)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := syscall.Recvfrom(h.fd, buf, 0)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type == syscall.NLMSG_ERROR && m.Header.Seq == seq && len(m.Data) >= 4 {
				if code := int32(ne.Uint32(m.Data)); code != 0 {
					return syscall.Errno(-code)
				}
				return nil
			}
		}
	}
	return fmt.Errorf("no netlink ack")
}

func (h *Holder) verdict(id uint32) error {
	v := make([]byte, 8)
	binary.BigEndian.PutUint32(v[0:], nfAccept)
	binary.BigEndian.PutUint32(v[4:], id)
	return syscall.Sendto(h.fd, nfqMsg(nfqnlMsgVerdict, syscall.NLM_F_REQUEST, 0, h.queue, nlAttr(nfqaVerdictHdr, v)), 0,
		&syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
}

func (h *Holder) releaseLocked(why string) {
	for _, id := range h.held {
		if err := h.verdict(id); err != nil && h.err == nil {
			h.err = err
		}
	}
	h.events = append(h.events, fmt.Sprintf("%s released %d held packet(s) (%s)", time.Now().Format(time.RFC3339Nano), len(h.held), why))
	h.held = nil
	h.released = true
}

func (h *Holder) loop() {
	defer close(h.done)
	buf := make([]byte, 65536)
	for {
		select {
		case <-h.stop:
			h.mu.Lock()
			if len(h.held) > 0 {
				h.releaseLocked("stop")
			}
			h.mu.Unlock()
			return
		default:
		}
		n, _, err := syscall.Recvfrom(h.fd, buf, 0)
		h.mu.Lock()
		if err == nil {
			for _, m := range splitNetlink(buf[:n]) {
				if ne.Uint16(m[4:]) != nfnlSubsysQueue<<8|nfqnlMsgPacket || len(m) < 20 {
					continue
				}
				id, payload, ok := parseQueued(m[20:])
				if !ok {
					continue
				}
				fin := h.match(payload)
				if h.released || (len(h.held) == 0 && !fin) {
					if err := h.verdict(id); err != nil && h.err == nil {
						h.err = err
					}
					continue
				}
				if len(h.held) == 0 {
					h.first = time.Now()
				}
				h.held = append(h.held, id)
				what := "packet"
				if fin {
					h.fins++
					what = h.what
				}
				h.events = append(h.events, fmt.Sprintf("%s holding %s (queue id %d)", time.Now().Format(time.RFC3339Nano), what, id))
				if h.fins >= h.count {
					h.releaseLocked(fmt.Sprintf("%d %ss held", h.fins, h.what))
				}
			}
		}
		if !h.released && len(h.held) > 0 && time.Since(h.first) > h.maxHold {
			h.releaseLocked("max hold time")
		}
		h.mu.Unlock()
	}
}

// splitNetlink splits a datagram into netlink messages (header included). Unlike
// syscall.ParseNetlinkMessage it accepts a last message whose length is not padded.
func splitNetlink(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 16 {
		l := int(ne.Uint32(b))
		if l < 16 || l > len(b) {
			break
		}
		out = append(out, b[:l])
		b = b[min((l+3)&^3, len(b)):]
	}
	return out
}

// parseQueued returns the queue id of a queued packet and its IP packet (as far as copied).
func parseQueued(attrs []byte) (id uint32, payload []byte, ok bool) {
	for len(attrs) >= 4 {
		l := int(ne.Uint16(attrs[0:]))
		t := ne.Uint16(attrs[2:]) & 0x3fff
		if l < 4 || l > len(attrs) {
			break
		}
		switch {
		case t == nfqaPacketHdr && l >= 8:
			id, ok = binary.BigEndian.Uint32(attrs[4:]), true
		case t == nfqaPayload:
			payload = attrs[4:l]
		}
		attrs = attrs[min((l+3)&^3, len(attrs)):]
	}
	return id, payload, ok
}

// tcpFIN reports whether an IP packet (v4 or v6, no extension headers) is a TCP FIN.
func tcpFIN(ip []byte) bool {
	f, ok := tcpFlags(ip)
	return ok && f&FlagFIN != 0
}

// tcpSYNOnly reports whether an IP packet is a TCP SYN without ACK (a connection request).
func tcpSYNOnly(ip []byte) bool {
	f, ok := tcpFlags(ip)
	return ok && f&(FlagSYN|FlagACK|FlagRST) == FlagSYN
}

// tcpFlags returns the TCP flags of an IP packet (v4 or v6, no extension headers).
func tcpFlags(ip []byte) (uint8, bool) {
	if len(ip) < 1 {
		return 0, false
	}
	off := 0
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 20 || ip[9] != syscall.IPPROTO_TCP {
			return 0, false
		}
		off = int(ip[0]&0x0f) * 4
	case 6:
		if len(ip) < 40 || ip[6] != syscall.IPPROTO_TCP {
			return 0, false
		}
		off = 40
	default:
		return 0, false
	}
	if len(ip) <= off+13 {
		return 0, false
	}
	return ip[off+13], true
}

// Events returns what the holder did, with timestamps.
func (h *Holder) Events() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

// Released reports whether the held packets were let go together.
func (h *Holder) Released() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.released
}

// Stop releases anything still held, unbinds and closes the queue socket.
func (h *Holder) Stop() error {
	if h == nil {
		return nil
	}
	select {
	case <-h.stop:
		return h.err
	default:
	}
	close(h.stop)
	<-h.done
	nfqClose(h.fd, h.queue)
	return h.err
}

// nfqClose unbinds queue and closes its netlink socket fd (a Holder's, a DelayLine's).
func nfqClose(fd int, queue uint16) {
	_ = syscall.Sendto(fd, nfqMsg(nfqnlMsgConfig, syscall.NLM_F_REQUEST, 3, queue,
		nlAttr(nfqaCfgCmd, []byte{nfqnlCfgCmdUnbnd, 0, 0, syscall.AF_INET})), 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
	syscall.Close(fd)
}
