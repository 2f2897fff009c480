package capture

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcap"
	"github.com/gopacket/gopacket/pcapgo"
)

// Live capture through libpcap. The filter runs in the kernel (libpcap attaches it to the
// socket), so what is read, analysed and saved with SaveTo is exactly what tcpdump with the
// same expression would have written: analysing the saved file gives the same connections.

// LiveConfig says how to capture from a network interface.
type LiveConfig struct {
	Interface string // as tcpdump -i: eth0, any, ...
	// Snaplen is the number of bytes kept per packet; 0 means 262144 (tcpdump's default).
	Snaplen int
	// Promisc puts the interface into promiscuous mode (ignored on "any", which has none).
	Promisc bool
	// Filter is a tcpdump filter expression; "" keeps everything.
	Filter string
	// VerifyChecksums and NoDecap as in Config.
	VerifyChecksums bool
	NoDecap         bool
	// ReadTimeout bounds how long Poll waits for a packet: it is also libpcap's buffer timeout,
	// the longest a packet waits in the kernel before it is handed over. 0 means 100 ms.
	ReadTimeout time.Duration
	// BufferSize is the kernel capture buffer in bytes; 0 means 32 MiB. A bigger buffer rides
	// out longer bursts (or pauses of this process) without drops.
	BufferSize int
	// Count ends the capture after this many packets (filtered, TCP or not); 0: no limit.
	Count uint64
}

// DefaultReadTimeout is LiveConfig.ReadTimeout's default.
const DefaultReadTimeout = 100 * time.Millisecond

// Live reads TCP segments from a network interface. Poll, Next, Stats, SaveTo, Flush and Close
// belong to one goroutine; Stop may be called from any goroutine (a signal handler, a timer).
type Live struct {
	iface   string
	handle  *pcap.Handle
	link    uint16
	snaplen int
	timeout time.Duration
	count   uint64
	dec     decoder

	stopReq  atomic.Int64 // UnixNano when Stop was first called, 0 before
	hardStop bool         // Count reached: no draining
	ended    bool
	closed   bool

	records uint64
	stats   Stats
	final   *pcap.Stats // the kernel's counters as of Close
	errs    []*ReadError

	save    *pcapgo.Writer
	saveBuf *bufio.Writer
	saveErr error
}

var _ Source = (*Live)(nil)

// maxDrain bounds how long Poll keeps delivering after Stop, while packets keep coming.
const maxDrain = 300 * time.Millisecond

// idleBatch: Poll returns to its caller after this many records that were not TCP in a row,
// so a flood of other traffic cannot hold off the caller's timers.
const idleBatch = 256

// OpenLive opens an interface for capture, with the filter applied in the kernel. Errors say
// what to do: a missing CAP_NET_RAW, an unknown or down interface, a bad filter.
func OpenLive(cfg LiveConfig) (*Live, error) {
	if cfg.Interface == "" {
		return nil, errors.New("no interface given; list them with tcpstate -D")
	}
	if cfg.Snaplen == 0 {
		cfg.Snaplen = maxRecordLen
	}
	if cfg.Snaplen < 0 || cfg.Snaplen > maxRecordLen {
		return nil, fmt.Errorf("snapshot length %d out of range: give 1 to %d (0 means %d)", cfg.Snaplen, maxRecordLen, maxRecordLen)
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 32 << 20
	}
	if cfg.Filter != "" {
		// Validate the expression first, to report a typo in the same words as for files.
		if _, err := newFilter(cfg.Filter); err != nil {
			return nil, err
		}
	}
	in, err := pcap.NewInactiveHandle(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot set up a capture: %v", cfg.Interface, err)
	}
	defer in.CleanUp()
	// The "any" device has no promiscuous mode; asking for it makes activation fail.
	promisc := cfg.Promisc && cfg.Interface != "any"
	for _, set := range []func() error{
		func() error { return in.SetSnapLen(cfg.Snaplen) },
		func() error { return in.SetPromisc(promisc) },
		func() error { return in.SetTimeout(cfg.ReadTimeout) },
		func() error { return in.SetBufferSize(cfg.BufferSize) },
	} {
		if err := set(); err != nil {
			return nil, fmt.Errorf("%s: cannot set up a capture: %v", cfg.Interface, err)
		}
	}
	h, err := in.Activate()
	if err != nil {
		return nil, activateError(cfg.Interface, err, in.Error())
	}
	l := &Live{iface: cfg.Interface, handle: h, link: uint16(h.LinkType()), snaplen: h.SnapLen(),
		timeout: cfg.ReadTimeout, count: cfg.Count, dec: decoder{verifyChecksums: cfg.VerifyChecksums, noDecap: cfg.NoDecap}}
	if !linkSupported(l.link) {
		h.Close()
		return nil, fmt.Errorf("%s: link type %d (%s) is not supported; tcpstate reads Ethernet, Linux cooked (-i any), raw IP and loopback interfaces: try -i any",
			cfg.Interface, l.link, linkName(l.link))
	}
	if cfg.Filter != "" {
		if err := h.SetBPFFilter(cfg.Filter); err != nil {
			h.Close()
			return nil, fmt.Errorf("bad filter expression %q for %s (link type %s): %v; the syntax is tcpdump's (see man pcap-filter)",
				cfg.Filter, cfg.Interface, linkName(l.link), err)
		}
	}
	return l, nil
}

// activateError explains why libpcap could not start capturing, and what to do.
func activateError(iface string, err error, detail error) error {
	msg := err.Error()
	switch msg {
	case "Permission Denied":
		exe, _ := os.Executable()
		if exe == "" {
			exe = "tcpstate"
		}
		return fmt.Errorf("%s: permission denied: capturing packets needs the CAP_NET_RAW capability; run as root (sudo tcpstate -i %s ...), or give this binary the capability once: sudo setcap cap_net_raw,cap_net_admin=eip %s",
			iface, iface, exe)
	case "No Such Device":
		return fmt.Errorf("%s: no such interface; list the interfaces with tcpstate -D", iface)
	case "Interface Not Up":
		return fmt.Errorf("%s: the interface is down; bring it up (ip link set %s up) or pick another (tcpstate -D)", iface, iface)
	}
	if d := strings.TrimSpace(fmt.Sprint(detail)); d != "" && d != "<nil>" && !strings.Contains(msg, d) {
		msg += ": " + d
	}
	return fmt.Errorf("%s: cannot capture: %s", iface, msg)
}

// Interface is one capture device, as tcpdump -D lists it.
type Interface struct {
	Name        string
	Description string
	Flags       []string // Up, Running, Wireless, Loopback, Connected, Disconnected
}

// libpcap's PCAP_IF_ flags.
const (
	ifLoopback     = 0x01
	ifUp           = 0x02
	ifRunning      = 0x04
	ifWireless     = 0x08
	ifConnStatus   = 0x30 // a two-bit field: unknown, connected, disconnected, not applicable
	ifConnected    = 0x10
	ifDisconnected = 0x20
)

// Interfaces lists the devices libpcap can capture on, in its order (the one tcpdump -D uses).
func Interfaces() ([]Interface, error) {
	devs, err := pcap.FindAllDevs()
	if err != nil {
		return nil, fmt.Errorf("cannot list interfaces: %v", err)
	}
	out := make([]Interface, 0, len(devs))
	for _, d := range devs {
		f := d.Flags
		var fl []string
		if f&ifUp != 0 {
			fl = append(fl, "Up")
		}
		if f&ifRunning != 0 {
			fl = append(fl, "Running")
		}
		if f&ifWireless != 0 {
			fl = append(fl, "Wireless")
		}
		if f&ifLoopback != 0 {
			fl = append(fl, "Loopback")
		}
		switch f & ifConnStatus {
		case ifConnected:
			fl = append(fl, "Connected")
		case ifDisconnected:
			fl = append(fl, "Disconnected")
		}
		out = append(out, Interface{Name: d.Name, Description: d.Description, Flags: fl})
	}
	return out, nil
}

// Interface is the name the capture was opened on.
func (l *Live) Interface() string { return l.iface }

// LinkName is the link type, as tcpdump names it (EN10MB, LINUX_SLL, ...).
func (l *Live) LinkName() string { return linkName(l.link) }

// LinkDescription says what the link type is, in libpcap's words ("Ethernet").
func (l *Live) LinkDescription() string { return pcap.DatalinkValToDescription(int(linkToDLT(l.link))) }

// Snaplen is the snapshot length in effect.
func (l *Live) Snaplen() int { return l.snaplen }

// SaveTo also writes every captured packet to w, as a pcap file with nanosecond timestamps
// (what tcpdump -w writes, with the same packets). Call it before the first Poll; w is
// buffered here, so call Flush to make what was captured so far readable.
func (l *Live) SaveTo(w io.Writer) error {
	l.saveBuf = bufio.NewWriterSize(w, 256<<10)
	l.save = pcapgo.NewWriterNanos(l.saveBuf)
	if err := l.save.WriteFileHeader(uint32(l.snaplen), layers.LinkType(l.link)); err != nil {
		l.saveErr = err
		return err
	}
	return l.saveBuf.Flush()
}

// Flush writes out what SaveTo buffered. It returns the first write error, if any.
func (l *Live) Flush() error {
	if l.saveBuf == nil || l.saveErr != nil {
		return l.saveErr
	}
	l.saveErr = l.saveBuf.Flush()
	return l.saveErr
}

// Stop ends the capture from any goroutine. Packets the kernel already holds are still
// delivered (for up to a few hundred milliseconds), then Poll reports the end.
func (l *Live) Stop() {
	l.stopReq.CompareAndSwap(0, time.Now().UnixNano())
}

// Poll fills seg with the next TCP segment, waiting at most about the read timeout for one.
// got says whether seg was filled; open is false once the capture has ended (Stop, Count, or
// an error: see Errs), after which Poll returns false, false.
func (l *Live) Poll(seg *Segment) (got, open bool) {
	if l.ended {
		return false, false
	}
	for n := 0; ; n++ {
		if l.hardStop {
			l.ended = true
			return false, false
		}
		stopping := l.stopReq.Load()
		if stopping != 0 && time.Since(time.Unix(0, stopping)) > maxDrain {
			l.ended = true
			return false, false
		}
		data, ci, err := l.handle.ZeroCopyReadPacketData()
		if err != nil {
			if errors.Is(err, pcap.NextErrorTimeoutExpired) {
				if stopping != 0 {
					l.ended = true // drained: the kernel had nothing more
					return false, false
				}
				return false, true
			}
			l.ended = true
			if err != io.EOF {
				// No packet number or offset: a live capture has no file position to point at.
				why := strings.TrimSpace(l.handle.Error().Error())
				if why == "" {
					why = err.Error()
				}
				l.errs = append(l.errs, &ReadError{File: l.iface,
					Err: fmt.Errorf("the capture stopped after %d packet(s): %s", l.records, why)})
			}
			return false, false
		}
		l.records++
		l.stats.Packets++
		l.stats.Bytes += int64(len(data))
		if l.save != nil && l.saveErr == nil {
			l.saveErr = l.save.WritePacket(ci, data)
		}
		if l.count != 0 && l.records >= l.count {
			l.hardStop = true
		}
		if liveDecode(&l.dec, &l.stats, l.link, data, &ci, l.records, seg) {
			return true, true
		}
		if n >= idleBatch {
			return false, true
		}
	}
}

// Next is Poll that waits as long as it takes: it satisfies Source.
func (l *Live) Next(seg *Segment) bool {
	for {
		got, open := l.Poll(seg)
		if got {
			return true
		}
		if !open {
			return false
		}
	}
}

// Errs reports why the capture ended, when an error ended it (the interface went away).
func (l *Live) Errs() []*ReadError { return l.errs }

// Stats counts what was read, with the kernel's drop counters (pcap statistics): packets the
// capture buffer had no room for (KernelDropped) and packets the interface or its driver
// dropped (IfaceDropped, where the platform reports it).
func (l *Live) Stats() Stats {
	st := l.stats
	ps := l.final
	if !l.closed {
		if s, err := l.handle.Stats(); err == nil {
			ps = s
		}
	}
	if ps != nil {
		st.KernelDropped = uint64(ps.PacketsDropped)
		st.IfaceDropped = uint64(ps.PacketsIfDropped)
	}
	return st
}

// Close flushes the saved file and releases the interface. The statistics stay readable.
func (l *Live) Close() error {
	if l.closed {
		return nil
	}
	if s, err := l.handle.Stats(); err == nil {
		l.final = s
	}
	err := l.Flush()
	l.closed = true
	l.ended = true
	l.handle.Close()
	return err
}
