package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSnapshotEveryFiles: with -r, --snapshot-every writes, at each interval of packet time,
// a record of every connection still open, which is exactly that connection's record with
// --at that instant (plus the snapshot fields); the other records are those of a run without
// snapshots, byte for byte; a connection closed at both ends has no snapshot.
func TestSnapshotEveryFiles(t *testing.T) {
	for _, file := range []string{kern + "mixed-40/capture.pcap", kern + "keepalive-idle/capture.pcap"} {
		t.Run(file[len(kern):], func(t *testing.T) {
			code, plain, errs := runCLI("-r", file, "-o", "json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			code, out, errs := runCLI("-r", file, "-o", "json", "--snapshot-every", "1s")
			if code != 0 {
				t.Fatalf("--snapshot-every: exit %d: %s", code, errs)
			}
			// With --metrics too (it looks at the clock every second): the same records.
			code, withMetrics, errs := runCLI("-r", file, "-o", "json", "--snapshot-every", "1s", "--metrics", "127.0.0.1:0", "-q")
			if code != 0 || withMetrics != out {
				t.Errorf("--snapshot-every with --metrics: exit %d (%s), output differs:\n%s\nwant:\n%s", code, errs, withMetrics, out)
			}
			var finals, snaps []string
			for _, line := range strings.SplitAfter(out, "\n") {
				if strings.Contains(line, `"snapshot":true`) {
					snaps = append(snaps, line)
				} else if line != "" {
					finals = append(finals, line)
				}
			}
			if got := strings.Join(finals, ""); got != plain {
				t.Errorf("the final records differ from a run without snapshots:\n%s\nwant:\n%s", got, plain)
			}
			if len(snaps) == 0 {
				t.Fatalf("no snapshot records:\n%s", out)
			}
			// Each snapshot is the --at record of its connection at that instant.
			atRuns := map[string]map[uint64]string{}
			instants := map[string]bool{}
			for _, line := range snaps {
				var rec struct {
					ID     uint64 `json:"id"`
					At     string `json:"snapshot_at"`
					Client struct{ State string }
					Server struct{ State string }
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("snapshot record: %v\n%s", err, line)
				}
				if rec.Client.State == "CLOSED" && rec.Server.State == "CLOSED" {
					t.Errorf("a snapshot of a connection closed at both ends:\n%s", line)
				}
				instants[rec.At] = true
				byID, ok := atRuns[rec.At]
				if !ok {
					code, atOut, errs := runCLI("-r", file, "-o", "json", "--at", rec.At)
					if code != 0 {
						t.Fatalf("--at %s: exit %d: %s", rec.At, code, errs)
					}
					byID = map[uint64]string{}
					for _, l := range strings.SplitAfter(atOut, "\n") {
						var r struct {
							ID uint64 `json:"id"`
						}
						if json.Unmarshal([]byte(l), &r) == nil {
							byID[r.ID] = l
						}
					}
					atRuns[rec.At] = byID
				}
				want := strings.TrimSuffix(byID[rec.ID], "}\n") + `,"snapshot":true,"snapshot_at":"` + rec.At + "\"}\n"
				if line != want {
					t.Errorf("snapshot of #%d at %s:\n%s\nthe --at record says:\n%s", rec.ID, rec.At, line, want)
				}
			}
			t.Logf("%d snapshot records at %d instants, %d final records", len(snaps), len(instants), len(finals))
		})
	}
}

func TestFleetUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-r", kern + "mixed-40/capture.pcap", "--snapshot-every", "1s", "-o", "table"}, "add -o json"},
		{[]string{"-r", kern + "mixed-40/capture.pcap", "--metrics-ports", "443"}, "needs --metrics"},
		{[]string{"-r", kern + "mixed-40/capture.pcap", "--metrics", "127.0.0.1:0", "--metrics-ports", "443,x"}, "not a port number"},
		{[]string{"-r", kern + "mixed-40/capture.pcap", "--snapshot-every", "-1s", "-o", "json"}, "positive duration"},
	} {
		code, _, errs := runCLI(c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 mentioning %q", c.args, code, errs, c.want)
		}
	}
}
