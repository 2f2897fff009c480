package report

import (
	"time"

	"github.com/tcpstate/tcpstate/tracker"
)

// The JSON line's schema as Go structs, and the straightforward encoding/json path that fills
// them: the reference TestJSONLineMatchesEncoder holds the hand-written JSONLine to, byte for
// byte. Only tests use them, so they live here.

// JSONEndpoint is one endpoint in the JSON output.
type JSONEndpoint struct {
	IP       string `json:"ip"`
	Port     uint16 `json:"port"`
	State    string `json:"state"`
	Inferred bool   `json:"inferred"`
	Evidence string `json:"evidence,omitempty"`
	Since    string `json:"since,omitempty"`
	// TimerLeft: seconds until the current state's timer fires (TIME_WAIT, SYN retries).
	TimerLeft *float64 `json:"timer_left,omitempty"`
	// OS: the family whose profile aged this endpoint's states (linux, windows, bsd, macos,
	// unknown: aged as Linux); OSInferred: told from its packets, not set by --os;
	// OSEvidence: why.
	OS         string `json:"os"`
	OSInferred bool   `json:"os_inferred"`
	OSEvidence string `json:"os_evidence,omitempty"`
}

// JSONDiagnosis details one diagnosis.
type JSONDiagnosis struct {
	ID       string `json:"id"`
	Endpoint string `json:"endpoint"`
	Detail   string `json:"detail"`
}

// JSONConn is one line of -o json (SPEC field names).
type JSONConn struct {
	ID        uint64          `json:"id"`
	Client    JSONEndpoint    `json:"client"`
	Server    JSONEndpoint    `json:"server"`
	FirstSeen string          `json:"first_seen"`
	LastSeen  string          `json:"last_seen"`
	Packets   uint64          `json:"packets"`
	Bytes     uint64          `json:"bytes"`
	Diagnoses []string        `json:"diagnoses"`
	Details   []JSONDiagnosis `json:"diagnosis_details,omitempty"`
	Zeek      JSONZeek        `json:"zeek"`
	Midstream bool            `json:"midstream,omitempty"`
	Reuses    uint64          `json:"reuses,omitempty"`
	ReusedBy  uint64          `json:"reused_by,omitempty"`
	Tunnel    *JSONTunnel     `json:"tunnel,omitempty"`
	Profile   string          `json:"os_profile"`
	// Evicted: dropped from a full table (--max-flows) before it finished; TimedOut: silent
	// for the idle timeout. Either way it is reported as it stood then.
	Evicted  bool `json:"evicted,omitempty"`
	TimedOut bool `json:"timed_out,omitempty"`
}

// JSONZeek holds Zeek's labels for the connection.
type JSONZeek struct {
	ConnState string `json:"conn_state"`
	History   string `json:"history"`
	// RowsDropped: conn.log rows left out beyond zeek.MaxRows (hostile traffic).
	RowsDropped uint64 `json:"rows_dropped,omitempty"`
}

// JSONTunnel names the encapsulation a connection was carried in.
type JSONTunnel struct {
	Kind string `json:"kind"`
	Src  string `json:"src"`
	Dst  string `json:"dst"`
}

func endpointJSON(ep *tracker.Endpoint, now time.Time) JSONEndpoint {
	j := JSONEndpoint{IP: ep.Addr.Addr().String(), Port: ep.Addr.Port(), State: ep.State.String(),
		Inferred: ep.Inferred, Evidence: EvidenceText(&ep.Evidence), Since: ts(ep.Since)}
	if !ep.Deadline.IsZero() && ep.Deadline.After(now) {
		left := ep.Deadline.Sub(now).Seconds()
		j.TimerLeft = &left
	}
	j.OS, j.OSInferred, j.OSEvidence = osJSON(ep)
	return j
}

// ConnJSON converts a connection to its JSON form.
func ConnJSON(c *tracker.Conn, o *Options) JSONConn {
	now := asOf(c, o)
	j := JSONConn{ID: c.ID, Client: endpointJSON(&c.Client, now), Server: endpointJSON(&c.Server, now),
		FirstSeen: ts(c.FirstSeen), LastSeen: ts(c.LastSeen), Packets: c.Packets, Bytes: c.Bytes,
		Diagnoses: []string{}, Zeek: JSONZeek{ConnState: c.Zeek.ConnState(), History: c.Zeek.History, RowsDropped: c.Zeek.RowsDropped},
		Midstream: c.Midstream, Reuses: c.Reuses, ReusedBy: c.ReusedBy, Profile: o.Profile.Name,
		Evicted: c.Evicted, TimedOut: c.TimedOut}
	for i := range c.Diagnoses {
		d := &c.Diagnoses[i]
		j.Diagnoses = append(j.Diagnoses, d.ID)
		j.Details = append(j.Details, JSONDiagnosis{ID: d.ID, Endpoint: d.Side.String(), Detail: DetailText(c, d)})
	}
	if c.TunnelSrc != "" {
		j.Tunnel = &JSONTunnel{Kind: TunnelName(c.Tunnel), Src: c.TunnelSrc, Dst: c.TunnelDst}
	}
	return j
}
