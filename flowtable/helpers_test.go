package flowtable

import (
	"net/netip"
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/tracker"
)

// current is the connection a segment from src to dst would join now (nil: it would start a
// new one), without waking it if it is dormant.
func (t *Table) current(src, dst netip.AddrPort) *tracker.Conn {
	if ei := t.lookup(FlowHash(src, dst), src, dst); ei >= 0 {
		if l := t.liveOf(t.ents.at(ei)); l != nil {
			return &l.c
		}
	}
	return nil
}

var srv = netip.MustParseAddrPort("198.51.100.1:80")

const (
	S = capture.SYN
	A = capture.ACK
	F = capture.FIN
	R = capture.RST
	P = capture.PSH
)

// pkt is a hand-built segment: from the client or the server, at an offset, with its flags,
// sequence and acknowledgment numbers and payload length.
type pkt struct {
	fromClient bool
	at         time.Duration
	flags      capture.Flags
	seq, ack   uint32
	n          uint32
}
