package kernellab

import (
	"strings"
	"testing"
)

const fakeSSClient = `State      Recv-Q Send-Q       Local Address:Port         Peer Address:PortProcess
TIME-WAIT  0      0                192.0.2.2:40000        198.51.100.2:80
FIN-WAIT-2 0      0          [2001:db8:1::2]:40001   [2001:db8:2::2]:80
SYN-SENT   0      1                192.0.2.2:40002        198.51.100.2:8081
ESTAB      0      0                192.0.2.2:40009        198.51.100.2:80
ESTAB      0      0                127.0.0.1:1            127.0.0.1:2
`

const fakeSSServer = `State      Recv-Q Send-Q       Local Address:Port         Peer Address:PortProcess
LISTEN     0      128                0.0.0.0:80                0.0.0.0:*
LISTEN     0      128                   [::]:80                   [::]:*
CLOSE-WAIT 0      0          [2001:db8:2::2]:80      [2001:db8:1::2]:40001
ESTAB      0      0             198.51.100.2:80              192.0.2.2:40009
`

func mustSS(t *testing.T, s string) []SSRow {
	t.Helper()
	rows, err := ParseSS(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func mustTool(t *testing.T, s string) []ToolConn {
	t.Helper()
	c, err := ParseToolJSON(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A tool output that agrees with fakeSS* on every endpoint.
const goodJSON = `{"id": 1, "client": {"ip": "192.0.2.2", "port": 40000, "state": "TIME_WAIT"}, "server": {"ip": "198.51.100.2", "port": 80, "state": "CLOSED"}, "first_seen": "2026-11-24T18:47:47.1Z"}
{"id": 2, "client": {"ip": "2001:db8:1::2", "port": 40001, "state": "FIN_WAIT_2"}, "server": {"ip": "2001:db8:2::2", "port": 80, "state": "CLOSE_WAIT"}}
{"id": 3, "client": {"ip": "192.0.2.2", "port": 40002, "state": "SYN_SENT"}, "server": {"ip": "198.51.100.2", "port": 8081, "state": "CLOSED"}, "diagnoses": ["syn-unanswered"]}
{"id": 4, "client": {"ip": "192.0.2.2", "port": 40003, "state": "CLOSED"}, "server": {"ip": "198.51.100.2", "port": 81, "state": "CLOSED"}}

{"id": 5, "client": {"ip": "192.0.2.2", "port": 40009, "state": "ESTABLISHED", "inferred": true}, "server": {"ip": "198.51.100.2", "port": 80, "state": "ESTABLISHED", "inferred": true}}
`

func TestCompareAgrees(t *testing.T) {
	res := Compare("fake", mustTool(t, goodJSON), mustSS(t, fakeSSClient), mustSS(t, fakeSSServer))
	if len(res.Mismatches) != 0 {
		t.Fatalf("unexpected mismatches:\n%s", Table(res.Mismatches))
	}
	if res.Agree != 10 || res.Total != 10 || res.Conns != 5 {
		t.Errorf("got %s, want 10/10 and 5 connections", res)
	}
}

func TestCompareDetectsWrongStates(t *testing.T) {
	bad := strings.NewReplacer(
		`"port": 40000, "state": "TIME_WAIT"`, `"port": 40000, "state": "FIN_WAIT_2"`, // client wrong
		`"port": 80, "state": "CLOSE_WAIT"`, `"port": 80, "state": "LAST_ACK"`, // server wrong
		`"port": 81, "state": "CLOSED"`, `"port": 81, "state": "SYN_RECEIVED"`, // no row: must be CLOSED
	).Replace(goodJSON)
	res := Compare("fake", mustTool(t, bad), mustSS(t, fakeSSClient), mustSS(t, fakeSSServer))
	if res.Agree != 7 || res.Total != 10 || len(res.Mismatches) != 3 {
		t.Fatalf("got %s\n%s", res, Table(res.Mismatches))
	}
	table := Table(res.Mismatches)
	for _, want := range []string{"FIN_WAIT_2", "TIME_WAIT", "LAST_ACK", "CLOSE_WAIT", "SYN_RECEIVED", "CLOSED", "TOOL SAYS", "KERNEL SAYS"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

func TestCompareDetectsMissingConnections(t *testing.T) {
	// Drop connections 2 (FIN_WAIT_2/CLOSE_WAIT, rows on both sides) and 3 (SYN_SENT).
	var kept []string
	for _, l := range strings.Split(goodJSON, "\n") {
		if strings.HasPrefix(l, `{"id": 2,`) || strings.HasPrefix(l, `{"id": 3,`) {
			continue
		}
		kept = append(kept, l)
	}
	res := Compare("fake", mustTool(t, strings.Join(kept, "\n")), mustSS(t, fakeSSClient), mustSS(t, fakeSSServer))
	if len(res.Mismatches) != 3 {
		t.Fatalf("want 3 missed rows, got %s\n%s", res, Table(res.Mismatches))
	}
	for _, m := range res.Mismatches {
		if m.Tool != "(missing)" {
			t.Errorf("unexpected mismatch %+v", m)
		}
	}
	if res.Agree != 6 || res.Total != 9 {
		t.Errorf("got %s, want 6/9", res)
	}
}

func TestCompareReusedTuple(t *testing.T) {
	// Two instances of one 4-tuple: the earlier must be CLOSED on both ends, the later gets the row.
	const ssC = "State Recv-Q Send-Q Local Address:Port Peer Address:Port\nTIME-WAIT 0 0 192.0.2.2:40000 198.51.100.2:80\n"
	good := `{"id": 2, "client": {"ip": "192.0.2.2", "port": 40000, "state": "TIME_WAIT"}, "server": {"ip": "198.51.100.2", "port": 80, "state": "CLOSED"}, "first_seen": "2026-11-24T18:47:49Z"}
{"id": 1, "client": {"ip": "192.0.2.2", "port": 40000, "state": "CLOSED"}, "server": {"ip": "198.51.100.2", "port": 80, "state": "CLOSED"}, "first_seen": "2026-11-24T18:47:47Z"}
`
	res := Compare("reuse", mustTool(t, good), mustSS(t, ssC), nil)
	if len(res.Mismatches) != 0 || res.Total != 4 {
		t.Fatalf("got %s\n%s", res, Table(res.Mismatches))
	}
	// Both instances claiming TIME_WAIT: the earlier one is wrong.
	bad := strings.Replace(good, `"port": 40000, "state": "CLOSED"`, `"port": 40000, "state": "TIME_WAIT"`, 1)
	res = Compare("reuse", mustTool(t, bad), mustSS(t, ssC), nil)
	if len(res.Mismatches) != 1 || !strings.Contains(res.Mismatches[0].Conn, "instance 1/2") || res.Mismatches[0].Kernel != "CLOSED" {
		t.Fatalf("got %s\n%s", res, Table(res.Mismatches))
	}
	// Without first_seen, ids order the instances.
	noTimes := `{"id": 7, "client": {"ip": "192.0.2.2", "port": 40000, "state": "TIME_WAIT"}, "server": {"ip": "198.51.100.2", "port": 80, "state": "CLOSED"}}
{"id": 3, "client": {"ip": "192.0.2.2", "port": 40000, "state": "CLOSED"}, "server": {"ip": "198.51.100.2", "port": 80, "state": "CLOSED"}}
`
	if res = Compare("reuse", mustTool(t, noTimes), mustSS(t, ssC), nil); len(res.Mismatches) != 0 {
		t.Fatalf("ordering by id: %s\n%s", res, Table(res.Mismatches))
	}
}

func TestCompareRoleAndRanges(t *testing.T) {
	// The tool swapped client and server (e.g. a mid-stream guess): the states are still
	// checked per namespace, and the role is reported.
	const ssC = "State Recv-Q Send-Q Local Address:Port Peer Address:Port\nESTAB 0 0 192.0.2.2:40000 198.51.100.2:80\n"
	const ssS = "State Recv-Q Send-Q Local Address:Port Peer Address:Port\nESTAB 0 0 198.51.100.2:80 192.0.2.2:40000\n"
	swapped := `{"id": 1, "client": {"ip": "198.51.100.2", "port": 80, "state": "ESTABLISHED"}, "server": {"ip": "192.0.2.2", "port": 40000, "state": "ESTABLISHED"}}`
	res := Compare("swap", mustTool(t, swapped), mustSS(t, ssC), mustSS(t, ssS))
	if res.Agree != 2 || len(res.Mismatches) != 1 || res.Mismatches[0].Endpoint != "role" {
		t.Fatalf("got %s\n%s", res, Table(res.Mismatches))
	}
	outside := `{"id": 1, "client": {"ip": "10.0.0.1", "port": 1, "state": "CLOSED"}, "server": {"ip": "192.0.2.2", "port": 2, "state": "CLOSED"}}`
	res = Compare("outside", mustTool(t, outside), nil, nil)
	if res.Agree != 1 || len(res.Mismatches) != 1 || !strings.Contains(res.Mismatches[0].Note, "outside") {
		t.Fatalf("got %s\n%s", res, Table(res.Mismatches))
	}
}

func TestParseToolJSONErrors(t *testing.T) {
	for _, bad := range []string{
		`{"id": 1, "client": {"ip": "192.0.2.2", "port": 1, "state": "CLOSED"}}`,
		`not json`,
		`{"id": 1, "client": {"ip": "192.0.2.2", "port": "x"}, "server": {}}`,
	} {
		if _, err := ParseToolJSON(strings.NewReader(bad)); err == nil {
			t.Errorf("no error for %s", bad)
		}
	}
	conns := mustTool(t, `{"id": "c9", "client": {"ip": "192.0.2.2", "port": 1, "state": "closed"}, "server": {"ip": "bogus", "port": 2, "state": "CLOSED"}}`)
	res := Compare("x", conns, nil, nil)
	if len(res.Mismatches) != 1 || res.Mismatches[0].Tool != "unparseable" || !strings.Contains(res.Mismatches[0].Conn, "id c9") {
		t.Fatalf("got %s\n%s", res, Table(res.Mismatches))
	}
}
