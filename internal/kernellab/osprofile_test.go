package kernellab

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestPerEndpointProfiles: in mixed-timewait a Linux client and a netstack server with a 30 s
// TIME_WAIT each hold one connection in TIME_WAIT; 36 s later only the client's is left (both
// stacks' own listings). Per-endpoint profiles (--os 198.51.100.0/24=macos, 30 s) agree with
// both; one profile for both ends, Linux's or macOS's, gets one endpoint wrong.
func TestPerEndpointProfiles(t *testing.T) {
	bin := tool(t)
	dir := filepath.Join(netstackRecordings, "mixed-timewait")
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
	for _, c := range []struct {
		os      string
		wantBad int
	}{{"198.51.100.0/24=macos", 0}, {"linux", 1}, {"macos", 1}} {
		conns, err := RunTool(context.Background(), bin, dir, "--at", m.Snapshot, "--os", c.os)
		if err != nil {
			t.Fatal(err)
		}
		res := Compare("mixed-timewait --os "+c.os, conns, ssC, ssS)
		t.Logf("--os %s: %s", c.os, res)
		if len(res.Mismatches) != c.wantBad {
			t.Errorf("--os %s: %d endpoints disagree with their stack's truth, want %d:\n%s", c.os, len(res.Mismatches), c.wantBad, Table(res.Mismatches))
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
