package kernellab

import (
	"encoding/binary"
	"fmt"
	"sync"
	"syscall"
	"time"
)

// DelayLine is a fixed delay on the path (netem is not built into every kernel; NFQUEUE
// usually is): every packet an iptables NFQUEUE rule sends to its queue and that matches is let
// through Delay after it arrived, in arrival order; the others pass at once. With a match on
// FINs it holds only FINs, so later segments of the same sender overtake them.
type DelayLine struct {
	fd    int
	queue uint16
	delay time.Duration
	match func(ip []byte) bool
	what  string

	mu      sync.Mutex
	delayed int
	passed  int
	err     error
	stop    chan struct{}
	done    chan struct{}
	due     chan delayed
}

type delayed struct {
	id  uint32
	due time.Time
}

// StartDelayLine binds queue in the router and delays the matching packets (nil: all) by d.
func (l *Lab) StartDelayLine(queue uint16, d time.Duration, what string, match func([]byte) bool) (*DelayLine, error) {
	h, err := l.Router.StartHolderMatch(queue, 1<<30, time.Hour, what, func([]byte) bool { return false })
	if err != nil {
		return nil, err
	}
	// Reuse the holder's configured netlink socket: stop its loop (which holds nothing, as
	// nothing matches) but keep the queue bound.
	close(h.stop)
	<-h.done
	dl := &DelayLine{fd: h.fd, queue: queue, delay: d, match: match, what: what,
		stop: make(chan struct{}), done: make(chan struct{}), due: make(chan delayed, 4096)}
	go dl.releaser()
	go dl.loop()
	l.mu.Lock()
	l.delays = append(l.delays, dl)
	l.mu.Unlock()
	return dl, nil
}

func (dl *DelayLine) verdict(id uint32) {
	v := make([]byte, 8)
	binary.BigEndian.PutUint32(v[0:], nfAccept)
	binary.BigEndian.PutUint32(v[4:], id)
	err := syscall.Sendto(dl.fd, nfqMsg(nfqnlMsgVerdict, syscall.NLM_F_REQUEST, 0, dl.queue, nlAttr(nfqaVerdictHdr, v)), 0,
		&syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
	if err != nil {
		dl.mu.Lock()
		if dl.err == nil {
			dl.err = err
		}
		dl.mu.Unlock()
	}
}

func (dl *DelayLine) loop() {
	defer close(dl.due)
	buf := make([]byte, 65536)
	for {
		select {
		case <-dl.stop:
			return
		default:
		}
		n, _, err := syscall.Recvfrom(dl.fd, buf, 0)
		if err != nil {
			continue // SO_RCVTIMEO: look at stop again
		}
		now := time.Now()
		for _, m := range splitNetlink(buf[:n]) {
			if ne.Uint16(m[4:]) != nfnlSubsysQueue<<8|nfqnlMsgPacket || len(m) < 20 {
				continue
			}
			id, payload, ok := parseQueued(m[20:])
			if !ok {
				continue
			}
			if dl.match != nil && !dl.match(payload) {
				dl.mu.Lock()
				dl.passed++
				dl.mu.Unlock()
				dl.verdict(id)
				continue
			}
			dl.mu.Lock()
			dl.delayed++
			dl.mu.Unlock()
			dl.due <- delayed{id, now.Add(dl.delay)}
		}
	}
}

// releaser lets each delayed packet go at its time (they are due in arrival order).
func (dl *DelayLine) releaser() {
	defer close(dl.done)
	for p := range dl.due {
		if w := time.Until(p.due); w > 0 {
			time.Sleep(w)
		}
		dl.verdict(p.id)
	}
}

// Counts says how many packets were delayed and how many let through at once.
func (dl *DelayLine) Counts() (delayed, passed int) {
	dl.mu.Lock()
	defer dl.mu.Unlock()
	return dl.delayed, dl.passed
}

// Stop releases what is still delayed (at its time), unbinds and closes the queue socket.
func (dl *DelayLine) Stop() error {
	if dl == nil {
		return nil
	}
	select {
	case <-dl.stop:
		return dl.err
	default:
	}
	close(dl.stop)
	<-dl.done
	nfqClose(dl.fd, dl.queue)
	if dl.err != nil {
		return fmt.Errorf("delay line %s: %w", dl.what, dl.err)
	}
	return nil
}
