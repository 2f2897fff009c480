package tracker

import (
	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/reassembly"
)

// A client that lost its socket (reboot, killed process, a RST that never left) and connects
// again from the same port sends a SYN to a server that still holds the old connection. A
// synchronized stack does not take that SYN as a new connection (RFC 5961 §4): it answers with
// a challenge ACK carrying the old sequence numbers, the client's new socket (SYN_SENT) answers
// that with a RST at the acknowledged number, which ends the *old* connection, and the client's
// retransmitted SYN then opens the new one. So while the server's side is synchronized and
// open, such a SYN belongs to the old instance: it proves the client's old socket gone, and the
// challenge ACK and the RST that follow are the old connection's.

// reconnectSYN reports whether seg, a SYN with a new ISN on c's 4-tuple, is a reconnect that
// c's server answers as above rather than a new instance.
func (c *Conn) reconnectSYN(seg *capture.Segment) bool {
	from := c.sideOf(seg)
	peer := c.endpoint(1 - from)
	if c.Midstream || peer.ev.midstream {
		return false
	}
	switch peer.ev.derive(capture.TimeOf(seg.Time)) {
	case Established, CloseWait, FinWait1, FinWait2, Closing, LastAck:
		return true
	}
	return false
}

// applyReconnect takes the reconnecting SYN into the old instance: its sender's old socket is
// gone; the SYN is not part of the old sequence space.
func (c *Conn) applyReconnect(seg *capture.Segment) reassembly.Kind {
	from := c.sideOf(seg)
	s := c.endpoint(from)
	c.LastSeen = seg.Time
	c.Packets++
	c.DirPackets[from]++
	c.DirIPBytes[from] += uint64(seg.IPLen)
	if !s.ev.replaced {
		s.ev.replaced, s.ev.tReset = true, capture.TimeOf(seg.Time)
	}
	d := &c.doubt
	d.reconnect, d.reconnectISN, d.reconnectPkt = true, seg.Seq, seg.Packet
	return reassembly.New
}

// isReconnectSYN reports whether seg is the reconnecting SYN c took in (or its retransmission
// while the server still holds the old connection).
func (c *Conn) isReconnectSYN(seg *capture.Segment) bool {
	return seg.Flags&(capture.SYN|capture.ACK|capture.RST) == capture.SYN &&
		capture.Seq(seg.Seq) != c.Dir[c.sideOf(seg)].ISN && c.reconnectSYN(seg)
}

// acceptsReconnect reports whether seg is a SYN-ACK answering the reconnecting SYN c took in:
// the server had no synchronized socket after all (the capture missed its end), so the SYN
// opened a new connection, which starts here, its SYN already counted with the old one.
func (c *Conn) acceptsReconnect(seg *capture.Segment) bool {
	return seg.Flags&(capture.SYN|capture.ACK|capture.RST) == capture.SYN|capture.ACK &&
		seg.Ack == c.doubt.reconnectISN+1
}
