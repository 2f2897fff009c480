package report

import "github.com/tcpstate/tcpstate/tracker"

// osJSON gives an endpoint's "os", "os_inferred" and "os_evidence" (empty when the tracker
// ran without per-endpoint profiles and saw nothing of it).
func osJSON(ep *tracker.Endpoint) (os string, inferred bool, evidence string) {
	o := &ep.OS
	if o.Forced || o.Facts.Known() {
		evidence = o.Evidence()
	}
	return o.Family.String(), o.Inferred(), evidence
}
