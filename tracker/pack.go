package tracker

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
	"github.com/tcpstate/tcpstate/internal/pack"
)

// Packing: a connection written into a string with internal/pack and read back exactly as it
// was (the flow table packs dormant and closed connections; see package flowtable). Every field
// must be visited here: TestPackRoundTrip fills each field of a Conn with a value and fails if
// one does not come back, so a new field cannot be forgotten silently. Fields that are usually
// zero sit in blocks behind one bit (pack.Codec.Block), whose condition names each of them and
// which, when left out, zeroes each of them: a field missing from a condition fails
// TestPackRoundTrip (it sets each field alone), one missing from the zeroing fails
// TestPackOverwrites (it unpacks over a Conn with every field set).

// OnlyFirst reports whether c can be packed as its first segment: nothing but that segment
// ever touched it.
func (c *Conn) OnlyFirst() bool {
	return c.Packets+c.Duplicates == 1 && c.Reuses == 0 && c.ReusedBy == 0 && !c.done &&
		c.AsOf.IsZero() && !c.Evicted && !c.TimedOut
}

// Pack visits every field of the connection but those of the blob's head (see the package
// comment of internal/pack).
func (c *Conn) Pack(k *pack.Codec, in *pack.Interner) {
	k.Time(&c.FirstSeen)
	k.SetBase(c.FirstSeen)

	c.Client.pack(k, in)
	c.Server.pack(k, in)
	k.Time(&c.LastSeen)
	pack.Uint(k, &c.Packets)
	pack.Uint(k, &c.Bytes)
	for i := range 2 {
		pack.Uint(k, &c.DirPackets[i])
		pack.Uint(k, &c.DirIPBytes[i])
	}
	// The latest sequence number of each direction's space, which the next one is written
	// relative to (reassembly.Direction.Pack).
	var seqs [2]capture.Seq
	c.Dir[0].Pack(k, &seqs[0], &seqs[1])
	c.Dir[1].Pack(k, &seqs[1], &seqs[0])
	c.Zeek.Pack(k, in, &seqs)
	pack.Uint(k, &c.EndedBy)
	for i := range 2 {
		k.Dur(&c.rtt[i])
		pack.Stamp(k, &c.synTime[i])
	}
	pack.Stamp(k, &c.lastData)
	k.Bool(&c.done)
	k.Time(&c.AsOf)
	c.packRare(k, in)
	c.doubt.pack(k)
}

// packRare visits the fields of a connection that are usually zero, behind one bit.
func (c *Conn) packRare(k *pack.Codec, in *pack.Interner) {
	if !k.Block(k.Enc && (c.Duplicates != 0 || c.Midstream || c.RoleInferred || c.Reuses != 0 ||
		c.ReusedBy != 0 || len(c.Diagnoses) != 0 || c.Tunnel != 0 || c.TunnelSrc != "" ||
		c.TunnelDst != "" || c.finInferred != [2]bool{} || c.zwSince != [2]capture.Time{} ||
		c.zwLong != [2]time.Duration{} || len(c.rstNotes) != 0 || c.Evicted || c.TimedOut)) {
		if !k.Enc {
			c.Duplicates, c.Midstream, c.RoleInferred, c.Reuses, c.ReusedBy = 0, false, false, 0, 0
			c.Diagnoses = pack.GrowTo(c.Diagnoses, 0)
			c.Tunnel, c.TunnelSrc, c.TunnelDst = 0, "", ""
			c.finInferred, c.zwSince, c.zwLong = [2]bool{}, [2]capture.Time{}, [2]time.Duration{}
			c.rstNotes = pack.GrowTo(c.rstNotes, 0)
			c.Evicted, c.TimedOut = false, false
		}
		return
	}
	pack.Uint(k, &c.Duplicates)
	k.Bools(&c.Midstream, &c.RoleInferred, &c.finInferred[0], &c.finInferred[1], &c.Evicted, &c.TimedOut)
	pack.Uint(k, &c.Reuses)
	pack.Uint(k, &c.ReusedBy)
	n := k.Len(len(c.Diagnoses))
	if !k.Enc {
		c.Diagnoses = pack.GrowTo(c.Diagnoses, n)
	}
	for i := range n {
		d := &c.Diagnoses[i]
		pack.Uint(k, &d.Side)
		d.Detail.pack(k)
		if !k.Enc {
			d.ID = d.Detail.Kind.ID() // a diagnosis is its detail's kind's (diag)
		}
	}
	pack.Uint(k, &c.Tunnel)
	k.Dict(&c.TunnelSrc, in)
	k.Dict(&c.TunnelDst, in)
	for i := range 2 {
		pack.Stamp(k, &c.zwSince[i])
		k.Dur(&c.zwLong[i])
	}
	n = k.Len(len(c.rstNotes))
	if !k.Enc {
		c.rstNotes = pack.GrowTo(c.rstNotes, n)
	}
	for i := range n {
		r := &c.rstNotes[i]
		pack.Uint(k, &r.from)
		k.Bools(&r.accepted, &r.wantChallenge)
		pack.Uint(k, &r.verdict)
		pack.Stamp(k, &r.t)
		pack.Uint(k, &r.packet)
		k.Seq(&r.rcvNxt)
		pack.Uint(k, &r.challenge)
	}
}

func (ep *Endpoint) pack(k *pack.Codec, in *pack.Interner) {
	pack.Uint(k, &ep.State)
	k.Time(&ep.Since)
	k.Bool(&ep.Inferred)
	if k.Block(k.Enc && ep.Evidence != Evidence{}) {
		ep.Evidence.pack(k)
	} else if !k.Enc {
		ep.Evidence = Evidence{}
	}
	k.Time(&ep.Deadline)
	ep.OS.pack(k)
	e := &ep.ev
	pack.Int(k, &e.retries)
	// The evidence in three blocks, each usually all set or all zero: the handshake, the
	// close, and trouble.
	if k.Block(k.Enc && (e.sentSYN || e.sentSYNACK || e.gotSYN || e.synAcked ||
		e.firstSYN != 0 || e.lastSYN != 0 || e.nSYN != 0 || e.tSynAckLast != 0 ||
		e.tSynAcked != 0)) {
		k.Bools(&e.sentSYN, &e.sentSYNACK, &e.gotSYN, &e.synAcked)
		pack.Stamp(k, &e.firstSYN)
		pack.Stamp(k, &e.lastSYN)
		pack.Int(k, &e.nSYN)
		pack.Stamp(k, &e.tSynAckLast)
		pack.Stamp(k, &e.tSynAcked)
	} else if !k.Enc {
		e.sentSYN, e.sentSYNACK, e.gotSYN, e.synAcked = false, false, false, false
		e.firstSYN, e.lastSYN, e.nSYN, e.tSynAckLast, e.tSynAcked = 0, 0, 0, 0, 0
	}
	if k.Block(k.Enc && (e.sentFIN || e.finPassive || e.gotFIN || e.finAcked ||
		e.tFinAckLast != 0 || e.tFinAcked != 0 || e.tGotFIN != 0 ||
		e.tSentFIN != 0 || e.lastFIN != 0)) {
		k.Bools(&e.sentFIN, &e.finPassive, &e.gotFIN, &e.finAcked)
		pack.Stamp(k, &e.tFinAckLast)
		pack.Stamp(k, &e.tFinAcked)
		pack.Stamp(k, &e.tGotFIN)
		pack.Stamp(k, &e.tSentFIN)
		pack.Stamp(k, &e.lastFIN)
	} else if !k.Enc {
		e.sentFIN, e.finPassive, e.gotFIN, e.finAcked = false, false, false, false
		e.tFinAckLast, e.tFinAcked, e.tGotFIN, e.tSentFIN, e.lastFIN = 0, 0, 0, 0, 0
	}
	if k.Block(k.Enc && (e.sentRST || e.gotRST || e.synAckLost != 0 || e.finAckLost != 0 ||
		e.synAckPending != 0 || e.finAckPending != 0 || e.midstream || e.replaced ||
		e.prevFINGap != 0 || e.tReset != 0 || e.prevSYNGap != 0)) {
		k.Bools(&e.sentRST, &e.gotRST, &e.midstream, &e.replaced)
		pack.Int(k, &e.synAckLost)
		pack.Int(k, &e.finAckLost)
		pack.Stamp(k, &e.synAckPending)
		pack.Stamp(k, &e.finAckPending)
		k.Dur(&e.prevFINGap)
		pack.Stamp(k, &e.tReset)
		k.Dur(&e.prevSYNGap)
	} else if !k.Enc {
		e.sentRST, e.gotRST, e.synAckLost, e.finAckLost = false, false, 0, 0
		e.synAckPending, e.finAckPending, e.midstream, e.replaced = 0, 0, false, false
		e.prevFINGap, e.tReset, e.prevSYNGap = 0, 0, 0
	}
}

// pack visits every fact of a diagnosis's detail (varints; a zero fact costs a bit). The kind
// and its first number come first; the rest, which most kinds leave zero (a SYN flood's
// detail is a count of SYNs), sit behind one bit.
func (d *Detail) pack(k *pack.Codec) {
	pack.Uint(k, &d.Kind)
	pack.Uint(k, &d.N[0])
	if k.Block(k.Enc && (d.State != 0 || d.Verdict != 0 || d.Misfit != Misfit{} || d.N[1] != 0 ||
		d.N[2] != 0 || d.D != 0 || d.At != 0)) {
		pack.Uint(k, &d.State)
		pack.Uint(k, &d.Verdict)
		d.Misfit.pack(k)
		pack.Uint(k, &d.N[1])
		pack.Uint(k, &d.N[2])
		pack.Int(k, &d.D)
		pack.Stamp(k, &d.At) // near the connection's other times
	} else if !k.Enc {
		d.State, d.Verdict, d.Misfit, d.N[1], d.N[2], d.D, d.At = 0, 0, Misfit{}, 0, 0, 0, 0
	}
}

// pack visits every fact of an endpoint's evidence.
func (e *Evidence) pack(k *pack.Codec) {
	pack.Uint(k, &e.Kind)
	pack.Uint(k, &e.State)
	e.Misfit.pack(k)
	pack.Uint(k, &e.Count)
	pack.Uint(k, &e.Packet)
	pack.Int(k, &e.D)
}

func (m *Misfit) pack(k *pack.Codec) {
	pack.Uint(k, &m.TTL)
	pack.Uint(k, &m.HostTTL)
	pack.Uint(k, &m.Flags)
	pack.Uint(k, &m.IPID)
	pack.Uint(k, &m.HostIPID)
}
