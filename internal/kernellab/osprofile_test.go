package kernellab

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPerEndpointProfiles: two mixed captures where each end's own stack holds one connection
// in TIME_WAIT and the truth is taken when only one of them is left.
//
// mixed-timewait: a Linux client (60 s) and a netstack server tuned to 30 s, 36 s later.
// lwip-timewait: an lwIP client (120 s, its default) and a Linux server (60 s), 65 s later.
//
// Per-endpoint profiles agree with both stacks; one profile for both ends, whichever, gets one
// endpoint wrong; and --os auto cannot place lwIP (TTL 255, mss,nop,ws) and ages it as Linux.
func TestPerEndpointProfiles(t *testing.T) {
	bin := tool(t)
	for _, sc := range []struct {
		dir   string
		cases map[string]int // --os -> endpoints that must disagree
	}{
		{"mixed-timewait", map[string]int{"198.51.100.0/24=macos": 0, "linux": 1, "macos": 1}},
		{"lwip-timewait", map[string]int{"192.0.2.0/24=windows": 0, "client=windows": 0, "linux": 1, "windows": 1, "auto": 1}},
	} {
		dir := filepath.Join(netstackRecordings, sc.dir)
		m, err := ReadMeta(dir)
		if err != nil {
			t.Fatal(err)
		}
		ssC, err := ReadSSFile(filepath.Join(dir, SSClientFile))
		if err != nil {
			t.Fatal(err)
		}
		ssS, err := ReadSSFile(filepath.Join(dir, SSServerFile))
		if err != nil {
			t.Fatal(err)
		}
		for os, wantBad := range sc.cases {
			conns, err := RunTool(context.Background(), bin, dir, "--at", m.Snapshot, "--os", os)
			if err != nil {
				t.Fatal(err)
			}
			res := Compare(sc.dir+" --os "+os, conns, ssC, ssS)
			t.Logf("%s", res)
			if len(res.Mismatches) != wantBad {
				t.Errorf("%s --os %s: %d endpoints disagree with their stack's truth, want %d:\n%s", sc.dir, os, len(res.Mismatches), wantBad, Table(res.Mismatches))
			}
		}
	}
}

// TestOSAutoKernel: --os auto (the default) names every Linux and netstack endpoint of the
// kernel and netstack recordings Linux when its SYN or SYN-ACK is in the capture, and never
// another OS. Endpoints seen only mid-stream have nothing but their TTL (64) to go by, and a
// Linux SYN-ACK to an lwIP SYN carries only mss,nop,ws (what lwIP offered; FreeBSD answers the
// same): unknown, aged as Linux. lwIP (initial TTL 255, mss,nop,ws) is unknown.
func TestOSAutoKernel(t *testing.T) {
	bin := tool(t)
	for _, root := range []string{recordings, netstackRecordings} {
		dirs, err := ScenarioDirs(root)
		if err != nil || len(dirs) == 0 {
			t.Fatalf("no recordings under %s: %v", root, err)
		}
		linux, unknown, lwip := 0, 0, 0
		for _, dir := range dirs {
			m, err := ReadMeta(dir)
			if err != nil {
				t.Fatal(err)
			}
			stacks := Stacks{Client: StackLinux, Server: StackLinux}
			if m.Stacks != nil {
				stacks = *m.Stacks
			}
			out, err := exec.Command(bin, "-r", filepath.Join(dir, CaptureFile), "-o", "json").Output()
			if err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
			for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
				var c struct {
					Client, Server struct {
						IP         string `json:"ip"`
						OS         string `json:"os"`
						OSInferred bool   `json:"os_inferred"`
						OSEvidence string `json:"os_evidence"`
					}
				}
				if err := json.Unmarshal(line, &c); err != nil {
					t.Fatalf("%s: %v", dir, err)
				}
				for _, ep := range []struct {
					role, stack, peer string
					os                string
					inf               bool
					ev                string
				}{{"client", stacks.Client, stacks.Server, c.Client.OS, c.Client.OSInferred, c.Client.OSEvidence},
					{"server", stacks.Server, stacks.Client, c.Server.OS, c.Server.OSInferred, c.Server.OSEvidence}} {
					handshake := bytes.Contains([]byte(ep.ev), []byte("SYN win")) || bytes.Contains([]byte(ep.ev), []byte("SYN-ACK win"))
					switch {
					case ep.stack == StackLwIP:
						if ep.os != "unknown" {
							t.Errorf("%s %s (lwIP): os %q (%q), want unknown", filepath.Base(dir), ep.role, ep.os, ep.ev)
						}
						lwip++
					case ep.os == "linux" && ep.inf:
						linux++
					case ep.os == "unknown" && (!handshake || ep.peer == StackLwIP):
						unknown++
					default:
						t.Errorf("%s %s: os %q (inferred %v, %q), want linux (handshake seen: %v)", filepath.Base(dir), ep.role, ep.os, ep.inf, ep.ev, handshake)
					}
				}
			}
		}
		t.Logf("%s: %d Linux/netstack endpoints named linux, %d unknown (no SYN or SYN-ACK of theirs captured, or answering lwIP), %d lwIP endpoints unknown", root, linux, unknown, lwip)
		if linux == 0 {
			t.Errorf("%s: no endpoint named linux", root)
		}
	}
}
