package kernellab

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The committed netstack recordings ($NETSTACK_RECORDINGS overrides).
var netstackRecordings = func() string {
	if d := os.Getenv("NETSTACK_RECORDINGS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "testdata", "pcaps", "netstack")
}()

// TestNetstackAgreement holds the tool against the committed netstack recordings: every
// endpoint state it reports must be what that endpoint's own stack (netstack or the Linux
// kernel) listed for itself at the end of the capture.
func TestNetstackAgreement(t *testing.T) {
	dirs, err := ScenarioDirs(netstackRecordings)
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no netstack recordings under %s: %v (record them with `make testdata-netstack`)", netstackRecordings, err)
	}
	agreement(t, netstackRecordings, dirs, nil)
}

// TestNetstackRecordingsWellFormed checks the committed netstack recordings themselves: every
// combination of stacks is there, each directory says which stack ran where, and its truth
// files parse.
func TestNetstackRecordingsWellFormed(t *testing.T) {
	dirs, err := ScenarioDirs(netstackRecordings)
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no netstack recordings under %s: %v", netstackRecordings, err)
	}
	combos := map[Stacks]int{}
	var total int64
	for _, dir := range dirs {
		m, err := ReadMeta(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m.Stacks == nil || m.Name != filepath.Base(dir) || len(m.Expect) == 0 {
			t.Errorf("%s: incomplete scenario.json (stacks %v, %d expectations)", dir, m.Stacks, len(m.Expect))
			continue
		}
		combos[Stacks{Client: m.Stacks.Client, Server: m.Stacks.Server}]++
		for _, f := range []string{SSClientFile, SSServerFile} {
			if _, err := ReadSSFile(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if fi, err := e.Info(); err == nil {
				total += fi.Size()
			}
		}
	}
	for _, want := range []Stacks{{Client: StackNetstack, Server: StackLinux}, {Client: StackLinux, Server: StackNetstack}, {Client: StackNetstack, Server: StackNetstack}} {
		if combos[want] == 0 {
			t.Errorf("no recording with client %s and server %s", want.Client, want.Server)
		}
	}
	if total > 1<<20 {
		t.Errorf("netstack recordings take %d bytes, keep them under 1 MB", total)
	}
	t.Logf("%d scenarios, %d bytes, combinations %v", len(dirs), total, combos)
}

// TestNetstackFresh records the quick subset of the netstack scenarios anew (root, network
// namespaces; the first run builds internal/netstackhost, ~30 s with a cold Go cache) and
// holds the tool against them.
func TestNetstackFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the fresh netstack recordings")
	}
	if err := Preflight(); err != nil {
		t.Skipf("cannot record netstack ground truth here: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	if _, err := NetstackHostBinary(ctx); err != nil {
		if s := err.Error(); strings.Contains(s, "dial tcp") || strings.Contains(s, "no such host") || strings.Contains(s, "proxy.golang.org") {
			t.Skipf("cannot fetch gVisor through the Go module proxy to build internal/netstackhost: %v", err)
		}
		t.Fatal(err)
	}
	t.Logf("netstack host ready in %.1fs (built once per source change, then cached)", time.Since(t0).Seconds())
	out := t.TempDir()
	t0 = time.Now()
	_, err := RecordNetstack(ctx, out, nil, true, 3, t.Logf)
	t.Logf("recorded in %.1fs", time.Since(t0).Seconds())
	if err != nil {
		t.Errorf("recording: %v", err)
	}
	dirs, derr := ScenarioDirs(out)
	if derr != nil || len(dirs) == 0 {
		t.Fatalf("no fresh netstack recordings: %v", derr)
	}
	agreement(t, out, dirs, nil)
}
