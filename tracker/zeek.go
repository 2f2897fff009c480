package tracker

import (
	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/reassembly"
)

// ZeekView follows a connection the way Zeek's TCP analyzer does, so that conn_state and
// history can be reported exactly as Zeek's conn.log would have them. It is a second, coarser
// engine beside the endpoint state machines: Zeek's endpoint states are not socket states.
type ZeekView struct {
	History string
	// OrigIsClient: Zeek's originator is our client (false when Zeek would have taken the
	// server as originator, i.e. the first packet came from it and nothing flipped it).
	orig    Side
	state   [2]ZeekState // indexed by Side
	seen    [2]uint16
	lastSYN [2]uint32
	lastFIN [2]uint32
	lastRST [2]uint32
	// Scaled counters for letters that repeat at 1, 10, 100, ... occurrences.
	nRetrans, nZeroWin, nBadSum, nGap [2]uint32
	size                              [2]uint64
	init                              bool
}

// ZeekState is Zeek's per-endpoint TCP state (TCP_ENDPOINT_*).
type ZeekState uint8

const (
	ZeekInactive ZeekState = iota
	ZeekSynSent
	ZeekSynAckSent
	ZeekPartial
	ZeekEstablished
	ZeekClosed
	ZeekReset
)

const (
	histSYN = 1 << iota
	histFIN
	histRST
	histFinRst
	histData
	histAck
	histMulti
)

// Orig is the side Zeek takes as originator.
func (z *ZeekView) Orig() Side { return z.orig }

func (z *ZeekView) letter(side Side, c byte) {
	if side != z.orig {
		c += 'a' - 'A'
	}
	z.History += string(c)
}

// check adds letter c the first time mask is seen for side; it reports whether it had been
// seen before.
func (z *ZeekView) check(side Side, mask uint16, c byte) bool {
	if z.seen[side]&mask == 0 {
		z.seen[side] |= mask
		z.letter(side, c)
		return false
	}
	return true
}

// scaled adds letter c when *n reaches 1, 10, 100, ... (Zeek's scaled history entries).
func (z *ZeekView) scaled(side Side, n *uint32, c byte) {
	*n++
	for th := uint32(1); th <= *n && th != 0; th *= 10 {
		if th == *n {
			z.letter(side, c)
			return
		}
		if th > 1e9/10 {
			return
		}
	}
}

func (z *ZeekView) observe(c *Conn, seg *capture.Segment, from Side, kind reassembly.Kind) {
	if !z.init {
		z.init = true
		z.orig = ClientSide
		if c.sideOf(seg) == ServerSide && c.Midstream && !seg.Flags.Has(capture.SYN) {
			// Zeek takes the first packet's sender as originator unless a well-known port says
			// otherwise; a flip is written as '^'.
			z.History = "^"
		}
		if c.RoleInferred && seg.Flags.Has(capture.SYN|capture.ACK) {
			z.History = "^"
		}
	}
	f := seg.Flags
	d := &c.Dir[from]
	rel := uint32(reassembly.Seq(seg.Seq) - d.ISN)
	bits := 0
	for _, b := range []capture.Flags{capture.SYN, capture.FIN, capture.RST} {
		if f&b != 0 {
			bits++
		}
	}
	if seg.BadChecksum {
		z.scaled(from, &z.nBadSum[from], 'C')
		return
	}
	switch {
	case bits > 1:
		if f.Has(capture.FIN | capture.RST) {
			z.check(from, histFinRst, 'I')
		} else {
			z.check(from, histMulti, 'Q')
		}
	case bits == 1:
		if f.Has(capture.SYN) {
			code := byte('S')
			if f.Has(capture.ACK) {
				code = 'H'
			}
			if z.check(from, histSYN, code) && rel != z.lastSYN[from] {
				z.letter(from, code)
			}
			z.lastSYN[from] = rel
		}
		if f.Has(capture.FIN) {
			end := rel + seg.PayloadLen
			if z.check(from, histFIN, 'F') && end != z.lastFIN[from] {
				z.letter(from, 'F')
			}
			z.lastFIN[from] = end
		}
		if f.Has(capture.RST) {
			if z.check(from, histRST, 'R') && rel != z.lastRST[from] {
				z.letter(from, 'R')
			}
			z.lastRST[from] = rel
		}
	default:
		if seg.PayloadLen > 0 {
			z.check(from, histData, 'D')
		} else if f.Has(capture.ACK) {
			z.check(from, histAck, 'A')
		}
	}
	if kind == reassembly.Retransmission && seg.PayloadLen > 0 {
		z.scaled(from, &z.nRetrans[from], 'T')
	}
	if seg.Window == 0 && !f.Has(capture.RST) && !f.Has(capture.SYN) && z.state[1-from] != ZeekClosed && z.state[from] != ZeekReset {
		z.scaled(from, &z.nZeroWin[from], 'W')
	}
	if kind == reassembly.Gap {
		z.scaled(1-from, &z.nGap[1-from], 'G')
	}
	if kind == reassembly.New || kind == reassembly.Gap || kind == reassembly.OutOfOrder {
		z.size[from] += uint64(seg.PayloadLen)
	}
	z.step(from, f)
}

// step moves Zeek's endpoint states.
func (z *ZeekView) step(from Side, f capture.Flags) {
	me, peer := &z.state[from], &z.state[1-from]
	switch {
	case f.Has(capture.RST):
		*me = ZeekReset
		return
	case f.Has(capture.SYN):
		switch *me {
		case ZeekInactive, ZeekPartial:
			if f.Has(capture.ACK) {
				*me = ZeekSynAckSent
				if *peer == ZeekSynSent {
					// nothing: established once the originator ACKs
				}
			} else {
				*me = ZeekSynSent
			}
		}
	}
	if f.Has(capture.FIN) {
		if *me != ZeekReset {
			if *me == ZeekInactive {
				*me = ZeekPartial
			}
			*me = ZeekClosed
		}
		return
	}
	if f.Has(capture.ACK) && !f.Has(capture.SYN) {
		switch *me {
		case ZeekInactive:
			*me = ZeekPartial
		case ZeekSynSent, ZeekSynAckSent:
			if *peer == ZeekSynAckSent || *peer == ZeekSynSent || *peer == ZeekEstablished {
				*me = ZeekEstablished
				if *peer == ZeekSynAckSent || *peer == ZeekSynSent {
					*peer = ZeekEstablished
				}
			}
		}
	} else if !f.Has(capture.SYN) && *me == ZeekInactive {
		*me = ZeekPartial
	}
}

// ConnState is Zeek's conn_state for the connection.
func (z *ZeekView) ConnState() string {
	os, rs := z.state[z.orig], z.state[1-z.orig]
	oInactive := os == ZeekInactive || os == ZeekPartial
	rInactive := rs == ZeekInactive || rs == ZeekPartial
	switch {
	case rs == ZeekReset:
		if os == ZeekSynSent || os == ZeekSynAckSent || (os == ZeekReset && z.size[0] == 0 && z.size[1] == 0) {
			return "REJ"
		}
		if oInactive {
			return "RSTRH"
		}
		return "RSTR"
	case os == ZeekReset:
		if rInactive {
			if rstos0(z.History) {
				return "RSTOS0"
			}
			return "OTH"
		}
		return "RSTO"
	case rs == ZeekClosed && os == ZeekClosed:
		return "SF"
	case os == ZeekClosed:
		if rInactive {
			return "SH"
		}
		return "S2"
	case rs == ZeekClosed:
		if oInactive {
			return "SHR"
		}
		return "S3"
	case os == ZeekSynSent && rs == ZeekInactive:
		return "S0"
	case os == ZeekEstablished && rs == ZeekEstablished:
		return "S1"
	}
	return "OTH"
}

// rstos0 matches Zeek's /\^?S[^HAFGIQ]*R.*/ on the history.
func rstos0(h string) bool {
	i := 0
	if i < len(h) && h[i] == '^' {
		i++
	}
	if i >= len(h) || h[i] != 'S' {
		return false
	}
	for i++; i < len(h); i++ {
		switch h[i] {
		case 'R':
			return true
		case 'H', 'A', 'F', 'G', 'I', 'Q':
			return false
		}
	}
	return false
}
