package main

import (
	"strings"
	"testing"
)

const mixed = "../../testdata/pcaps/netstack/mixed-timewait/capture.pcap"

// TestOSRulesAndAutoNames: --os rules give the server's addresses Windows' profile and the
// client Linux's (inferred); --names auto names each endpoint as its own OS does (ss for the
// Linux client, netstat for the Windows server). At the truth instant of mixed-timewait the
// client of connection 1 is in TIME_WAIT (Linux, 60 s) and so is the server of connection 2
// under Windows' 120 s (the lab's server had 30 s: this checks the naming, not the truth).
func TestOSRulesAndAutoNames(t *testing.T) {
	code, out, errs := runCLI("-r", mixed, "--at", "2026-12-03T23:03:02.846286622Z", "--os", "198.51.100.0/24=windows", "--names", "auto", "-o", "table")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 3 {
		t.Fatalf("table too short:\n%s", out)
	}
	for i, want := range [][]string{{"TIME-WAIT", "CLOSED"}, {"UNCONN", "TIME_WAIT"}} {
		f := strings.Fields(lines[1+i])
		if len(f) < 5 || f[2] != want[0] || f[4] != want[1] {
			t.Errorf("row %d: got %q, want client %s (ss) and server %s (netstat)", i+1, lines[1+i], want[0], want[1])
		}
	}
	_, js, _ := runCLI("-r", mixed, "--os", "198.51.100.0/24=windows", "-o", "json")
	for _, want := range []string{`"server":{"ip":"198.51.100.2"`, `"os":"windows","os_inferred":false,"os_evidence":"set by --os"`, `"os":"linux","os_inferred":true`} {
		if !strings.Contains(js, want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
}

func TestOSBadSetting(t *testing.T) {
	for _, bad := range []string{"solaris", "10.0.0.0/8=plan9", "auto,linux"} {
		code, _, errs := runCLI("-r", mixed, "--os", bad)
		if code != 2 || !strings.Contains(errs, "--os") {
			t.Errorf("--os %s: exit %d, stderr %q; want a usage error naming --os", bad, code, errs)
		}
	}
}
