package tracker

import "github.com/tcpstate/tcpstate/capture"

// hostPrint is an endpoint's fingerprint as the tap sees it, learned from the packets it
// certainly sent (all but RSTs, which are what it judges): its distance (the TTL or hop limit
// its packets arrive with), whether it sends TCP timestamps, and how its IPv4 ID behaves.
// A stack keeps these for the life of a connection; a middlebox forging a packet in its name
// sits elsewhere on the path and builds its own headers.
type hostPrint struct {
	n        uint32 // packets learned from
	ttl      uint8  // TTL at the tap (the latest)
	ttlMixed bool   // its packets arrived with different TTLs: distance tells nothing
	ts       uint32 // packets with TCP timestamps
	v4       uint32 // IPv4 packets
	ipid     uint16 // the latest IPv4 ID
	ipidUp   uint32 // IPv4 packets whose ID was the previous one plus 1 to 16
	ipidZero uint32 // IPv4 packets with ID 0
}

func (p *hostPrint) learn(seg *capture.Segment) {
	if p.n > 0 && seg.TTL != p.ttl {
		p.ttlMixed = true
	}
	p.ttl = seg.TTL
	if seg.Opts.Has&capture.HasTimestamps != 0 {
		p.ts++
	}
	if seg.Src.Addr().Is4() {
		if p.v4 > 0 && seg.IPID-p.ipid >= 1 && seg.IPID-p.ipid <= 16 {
			p.ipidUp++
		}
		if seg.IPID == 0 {
			p.ipidZero++
		}
		p.v4++
		p.ipid = seg.IPID
	}
	p.n++
}

// forgedRST is a RST judged forged in an endpoint's name.
type forgedRST struct {
	packet   uint64
	named    Side   // the endpoint it claims to come from
	why      Misfit // what does not fit: what a support engineer can check in Wireshark
	accepted bool   // its receiver took it (sequence number acceptable)
	heard    bool   // the named endpoint sent packets after it: it was not reset
}

// minPrint is how many of its packets an endpoint's fingerprint needs before a packet is
// judged against it (a handshake and an ACK).
const minPrint = 2

// judgeRST tells whether a RST claiming to come from side from fits that endpoint's
// fingerprint. The TTL decides: a stack sends every packet of a connection with the same
// initial TTL over the same path, so at a fixed tap they all arrive with the same TTL, its
// RSTs included (Linux's own RSTs, from a socket or for a segment without one, use the same
// default TTL); a middlebox sits at another distance. Timestamps and the IPv4 ID are named as
// further evidence, but do not decide alone: a host answering a segment for which it has no
// socket sends a RST without timestamps and with its own IP ID.
func (c *Conn) judgeRST(seg *capture.Segment, from Side) (forged bool, why Misfit) {
	p := &c.doubt.print[from]
	if p.n < minPrint || p.ttlMixed || seg.TTL == p.ttl {
		return false, Misfit{}
	}
	m := Misfit{TTL: seg.TTL, HostTTL: p.ttl}
	if seg.Src.Addr().Is6() {
		m.Flags |= MisfitHopLimit
	}
	if p.ts == p.n && seg.Opts.Has&capture.HasTimestamps == 0 {
		m.Flags |= MisfitNoTimestamps
	}
	if p.v4 >= minPrint && seg.Src.Addr().Is4() {
		switch {
		case p.ipidZero == p.v4 && seg.IPID != 0:
			m.Flags |= MisfitIPIDNotZero
			m.IPID = seg.IPID
		case p.ipidUp+1 >= p.v4 && seg.IPID-p.ipid > 16:
			m.Flags |= MisfitIPIDCounts
			m.IPID, m.HostIPID = seg.IPID, p.ipid
		}
	}
	return true, m
}

// noteForged records a forged RST (keeping the latest eight).
func (c *Conn) noteForged(seg *capture.Segment, from Side, why Misfit, accepted bool) {
	f := forgedRST{packet: seg.Packet, named: from, why: why, accepted: accepted}
	d := &c.doubt
	if len(d.forged) >= 8 {
		d.forged = append(d.forged[:0], d.forged[1:]...)
	}
	d.forged = append(d.forged, f)
}

// isForged reports whether packet n was judged a forged RST.
func (d *connDoubt) isForged(n uint64) bool {
	for _, f := range d.forged {
		if f.packet == n {
			return true
		}
	}
	return false
}

// forgedAs returns the latest forged RST in side's name that its receiver accepted and after
// which side was not heard from (nil: none): a middlebox that resets one end may have reset
// side too, out of the tap's sight.
func (d *connDoubt) forgedAs(side Side) *forgedRST {
	for i := len(d.forged) - 1; i >= 0; i-- {
		if f := &d.forged[i]; f.named == side && f.accepted && !f.heard {
			return f
		}
	}
	return nil
}

// heardFrom notes a packet from side: forged RSTs in its name did not reset it.
func (d *connDoubt) heardFrom(side Side) {
	for i := range d.forged {
		if d.forged[i].named == side {
			d.forged[i].heard = true
		}
	}
}
