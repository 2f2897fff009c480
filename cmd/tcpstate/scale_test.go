package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
)

// scaleCaptures are captures with many connections, port reuse and odd endings.
var scaleCaptures = []string{
	kern + "mixed-40/capture.pcap",
	pub + "tcptrace_fast_reuse.pcap",
	pub + "zeek_tcp_rst-inject-rae.pcap",
	"../../../shared/pcaps/public/gopacket_cip_scan.pcap",
	"../../../shared/pcaps/zeek/http_http-to-ssh.pcap",
	"../../../shared/pcaps/zeek/tcp_one-sided-2745.pcap", // connections idle for hours: timed out
}

// records runs tcpstate -o json with extra arguments and returns its lines by connection:
// addresses and first packet, everything else as written except the IDs (which a --shard run
// numbers within its shard).
func records(t *testing.T, path string, extra ...string) map[string]string {
	t.Helper()
	code, out, errs := runCLI(append([]string{"-r", path, "-o", "json", "-q"}, extra...)...)
	if code != 0 {
		t.Fatalf("tcpstate %s %v: exit %d: %s", path, extra, code, errs)
	}
	ids := regexp.MustCompile(`"(id|reuses|reused_by)":[0-9]+|connection #[0-9]+`)
	recs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var c struct {
			Client, Server struct {
				IP   string
				Port int
			}
			FirstSeen string `json:"first_seen"`
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		key := fmt.Sprintf("%s:%d %s:%d %s", c.Client.IP, c.Client.Port, c.Server.IP, c.Server.Port, c.FirstSeen)
		if _, dup := recs[key]; dup {
			key += " (again)"
		}
		recs[key] = ids.ReplaceAllString(line, "#")
	}
	return recs
}

// TestShardsCoverEverything: the --shard I/N runs are disjoint and together say what one run
// says about every connection.
func TestShardsCoverEverything(t *testing.T) {
	for _, path := range scaleCaptures {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			if _, err := os.Stat(path); err != nil {
				t.Skipf("%v (the shared corpus lives beside the repository)", err)
			}
			want := records(t, path)
			for _, n := range []int{2, 3} {
				union := map[string]string{}
				for i := range n {
					for k, v := range records(t, path, "--shard", fmt.Sprintf("%d/%d", i, n)) {
						if _, dup := union[k]; dup {
							t.Errorf("--shard %d/%d: %s is in two shards", i, n, k)
						}
						union[k] = v
					}
				}
				if len(union) != len(want) {
					t.Errorf("%d shards: %d connections, one run: %d", n, len(union), len(want))
				}
				keys := make([]string, 0, len(want))
				for k := range want {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					if union[k] != want[k] {
						t.Errorf("%d shards: %s\n  one run: %s\n  shards:  %s", n, k, want[k], union[k])
					}
				}
			}
		})
	}
}

// TestSameOutputWhateverTheCores: the output is the same byte for byte however many cores
// (and so tracker shards) a run has.
func TestSameOutputWhateverTheCores(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, path := range scaleCaptures {
		if _, err := os.Stat(path); err != nil {
			continue // the shared corpus lives beside the repository
		}
		for _, format := range []string{"json", "zeek", "table"} {
			var first string
			for _, procs := range []int{1, 2, 3, 8} {
				runtime.GOMAXPROCS(procs)
				code, out, errs := runCLI("-r", path, "-o", format, "-q")
				if code != 0 {
					t.Fatalf("%s: exit %d: %s", path, code, errs)
				}
				if procs == 1 {
					first = out
				} else if out != first {
					t.Errorf("%s -o %s: GOMAXPROCS=%d writes something else than GOMAXPROCS=1:\n%s", path, format, procs, diff(first, out))
				}
			}
		}
	}
}

// TestMaxFlows: --max-flows caps the table; what it evicts is reported as such, and counted.
func TestMaxFlows(t *testing.T) {
	path := kern + "mixed-40/capture.pcap"
	all := records(t, path)
	code, out, errs := runCLI("-r", path, "-o", "json", "-v", "--max-flows", "3")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	evicted := strings.Count(out, `"evicted":true`)
	if evicted == 0 {
		t.Fatalf("nothing evicted from a 3-connection table:\n%s", out)
	}
	if lines := strings.Count(out, "\n"); lines < len(all) {
		t.Errorf("%d connections reported with --max-flows 3, %d without: an evicted one must still be reported", lines, len(all))
	}
	if !strings.Contains(errs, fmt.Sprintf("at most 3 tracked at once; %d evicted (--max-flows 3)", evicted)) {
		t.Errorf("stderr with -v does not count the %d evictions:\n%s", evicted, errs)
	}
	_, table, _ := runCLI("-r", path, "-o", "table", "--max-flows", "3")
	if !strings.Contains(table, fmt.Sprintf("Evicted: %d connection(s)", evicted)) || !strings.Contains(table, "--max-flows 3") {
		t.Errorf("the table's summary does not report the %d evictions:\n%s", evicted, table)
	}
	if strings.Contains(out, `"id":"evicted"`) {
		t.Errorf("eviction is reported as a diagnosis; it is a field (\"evicted\": true)")
	}
	// Without a cap nothing is evicted, and the same connections come out.
	if code, out, _ := runCLI("-r", path, "-o", "json", "--max-flows", "1000"); code != 0 || strings.Contains(out, "evicted") {
		t.Errorf("a cap above the connection count evicted something (exit %d)", code)
	}
	if code, _, errs := runCLI("-r", path, "--max-flows", "-1"); code != 2 {
		t.Errorf("--max-flows -1: exit %d, want 2 (%s)", code, errs)
	}
}

// TestShardFlag: --shard takes I/N with 0 <= I < N.
func TestShardFlag(t *testing.T) {
	for _, bad := range []string{"1/1", "-1/2", "2", "a/b", "0/0"} {
		if code, _, errs := runCLI("-r", kern+"mixed-40/capture.pcap", "--shard", bad); code != 2 || !strings.Contains(errs, "--shard") {
			t.Errorf("--shard %s: exit %d, want 2 with a message (%s)", bad, code, errs)
		}
	}
}
