package report

import (
	"strconv"

	"github.com/tcpstate/tcpstate/osfp"
	"github.com/tcpstate/tcpstate/tracker"
)

// osJSON gives an endpoint's "os", "os_inferred" and "os_evidence" (empty when the tracker
// ran without per-endpoint profiles and saw nothing of it).
func osJSON(ep *tracker.Endpoint) (os string, inferred bool, evidence string) {
	o := &ep.OS
	if o.Forced || o.Facts.Known() {
		evidence = osEvidence(o)
	}
	return o.Family.String(), o.Inferred(), evidence
}

// osEvidence says why an endpoint has its OS family.
func osEvidence(o *tracker.EndpointOS) string {
	if o.Forced {
		return "set by --os"
	}
	_, why := osfp.Classify(o.Facts)
	if ev := o.Facts.Evidence(); ev != "" {
		return why + ": " + ev
	}
	return "no packet from it"
}

// osFields returns `,"os":...,"os_inferred":...[,"os_evidence":...]` for an endpoint. The
// evidence is words built from the facts; the same facts recur on every connection of a host,
// so each distinct set is written once and kept, up to 4096 sets (a flood of forged SYNs with
// random TTLs and windows must not grow it without bound; beyond that, each is written as it
// comes). Without it -o json took 50% more CPU on workload A (0.26 -> 0.40 s user at scale
// 0.3).
//
// The client's and the server's latest sets are checked first (osLast), before the map: a
// capture's connections mostly go between the same few hosts, and hashing the 32 bytes of an
// EndpointOS for the map was 4% of a SYN flood's run (workload B).
func (j *JSONLine) osFields(o *tracker.EndpointOS, ep *tracker.Endpoint, side tracker.Side) []byte {
	last := &j.osLast[side&1]
	if last.b != nil && last.os == *o {
		return last.b
	}
	if b, ok := j.osJSON[*o]; ok {
		*last = osMemo{*o, b}
		return b
	}
	os, inferred, evidence := osJSON(ep)
	b := append(j.osScratch[:0], `,"os":`...)
	b = appendJSONString(b, os)
	b = append(b, `,"os_inferred":`...)
	b = strconv.AppendBool(b, inferred)
	if evidence != "" {
		b = append(b, `,"os_evidence":`...)
		b = appendJSONString(b, evidence)
	}
	j.osScratch = b
	if j.osJSON == nil {
		j.osJSON = map[tracker.EndpointOS][]byte{}
	}
	if len(j.osJSON) < 4096 {
		b = append([]byte(nil), b...)
		j.osJSON[*o] = b
		*last = osMemo{*o, b}
	}
	return b
}

// osMemo is a set of os fields and what it was made from.
type osMemo struct {
	os tracker.EndpointOS
	b  []byte
}
