package tracker

// One-sided captures (issue 16). A filter such as 'dst port 80', or a tap that sees one
// direction of an asymmetric route, shows what one endpoint sent and nothing of what the other
// sent. The silence of the other side is then the capture's, not the connection's: reading it
// as "the server never answered" while the client acknowledges the server's packets would
// print contradictory diagnoses.

// OneSided reports whether the capture shows only one direction of c although the other
// endpoint did send: no packet from missing was captured, yet its peer acknowledged missing's
// sequence space (only a stack that received a SYN-ACK, or data, acknowledges it).
func (c *Conn) OneSided() (missing Side, ok bool) {
	for _, m := range []Side{ClientSide, ServerSide} {
		if c.DirPackets[m] == 0 && c.DirPackets[1-m] > 0 && c.Dir[m].AckedSet {
			return m, true
		}
	}
	return 0, false
}

// markOneSided, at the end of diagnose, keeps only the diagnoses that the captured side's own
// packets prove (a RST or a zero window it sent, and the notes about the 4-tuple), says once
// on the connection that the capture is one-sided (a capture-gap note), and marks both states
// inferred.
func (c *Conn) markOneSided() {
	m, ok := c.OneSided()
	if !ok {
		return
	}
	seen := 1 - m
	keep := c.Diagnoses[:0]
	for _, d := range c.Diagnoses {
		switch d.ID {
		case DiagReset, DiagZeroWindow:
			if d.Side == seen {
				keep = append(keep, d)
			}
		case DiagPortReused, DiagIdle, DiagMidstream:
			keep = append(keep, d)
		}
	}
	c.Diagnoses = keep
	c.addDiag(diag(m, Detail{Kind: DetailOneSided}))
	for _, ep := range []*Endpoint{&c.Client, &c.Server} {
		if !ep.Inferred {
			ep.Inferred, ep.Evidence = true, Evidence{Kind: EvidenceOneSided}
		}
	}
}
