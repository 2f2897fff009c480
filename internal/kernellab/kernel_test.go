package kernellab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The committed recordings, relative to this package ($KERNELLAB_RECORDINGS overrides, to hold
// the tool against recordings made elsewhere).
var recordings = func() string {
	if d := os.Getenv("KERNELLAB_RECORDINGS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "testdata", "pcaps", "kernel")
}()

var (
	toolOnce sync.Once
	toolPath string
	toolSkip string // reason to skip when the tool does not exist yet
	toolErr  error
	toolDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if toolDir != "" {
		os.RemoveAll(toolDir)
	}
	os.Exit(code)
}

// tool builds cmd/tcpstate once (or uses $TCPSTATE_BIN).
func tool(t *testing.T) string {
	t.Helper()
	toolOnce.Do(func() {
		if p := os.Getenv("TCPSTATE_BIN"); p != "" {
			toolPath = p
			return
		}
		src := filepath.Join("..", "..", "cmd", "tcpstate")
		if m, _ := filepath.Glob(filepath.Join(src, "*.go")); len(m) == 0 {
			toolSkip = "cmd/tcpstate has no Go files yet: nothing to hold against the kernel"
			return
		}
		dir, err := os.MkdirTemp("", "kernellab-tool-")
		if err != nil {
			toolErr = err
			return
		}
		toolDir = dir
		toolPath = filepath.Join(dir, "tcpstate")
		cmd := exec.Command("go", "build", "-o", toolPath, "github.com/tcpstate/tcpstate/cmd/tcpstate")
		if out, err := cmd.CombinedOutput(); err != nil {
			toolErr = fmt.Errorf("go build cmd/tcpstate: %v\n%s", err, out)
		}
	})
	if toolSkip != "" {
		t.Skip(toolSkip)
	}
	if toolErr != nil {
		t.Fatal(toolErr)
	}
	return toolPath
}

// agreement runs the tool on every scenario directory under root, one subtest each, and logs
// the per-scenario and total agreement. again, if set, records a scenario anew and returns
// its directory (fresh recordings only): a scenario that disagrees is judged again on a second
// recording, and fails only if that one disagrees too. Its first disagreement is logged whole.
// A random scenario (random-loss drops 12% of the packets each way) now and then draws a loss
// pattern the wire cannot decide, under the load of a full test run; a tool that is wrong
// disagrees on both.
func agreement(t *testing.T, root string, dirs []string, again func(t *testing.T, name string) string) {
	bin := tool(t)
	var mu sync.Mutex
	var results []Result
	for _, dir := range dirs {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			res, err := CompareDir(context.Background(), bin, dir)
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			results = append(results, res)
			mu.Unlock()
			t.Log(res.String())
			bad := decisive(t, res.Mismatches)
			pendingIssue14(t, root, res.Scenario, bad)
			if len(bad) > 0 && again != nil {
				t.Logf("FIRST RECORDING DISAGREES (%s), recording it again:\n%s", dir, Table(bad))
				if dir2 := again(t, name); dir2 != "" {
					res2, err := CompareDir(context.Background(), bin, dir2)
					if err != nil {
						t.Fatal(err)
					}
					t.Log("second recording: " + res2.String())
					bad = decisive(t, res2.Mismatches)
					pendingIssue14(t, root, res2.Scenario, bad)
					dir = dir2
				}
			}
			if len(bad) > 0 {
				t.Errorf("tool and kernel disagree (%s):\n%s", filepath.Join(dir), Table(bad))
			}
		})
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Scenario < results[j].Scenario })
	var b strings.Builder
	agree, total := 0, 0
	for _, r := range results {
		fmt.Fprintf(&b, "  %-34s %3d/%-3d endpoints agree\n", r.Scenario, r.Agree, r.Total)
		agree += r.Agree
		total += r.Total
	}
	t.Logf("kernel agreement under %s:\n%s  %-34s %3d/%-3d", root, b.String(), "TOTAL", agree, total)
}

// atAgreement runs `tool --at T` for every at-snapshot of every scenario directory (one subtest
// per snapshot, named scenario@N) and compares with that snapshot's ss files.
func atAgreement(t *testing.T, root string, dirs []string) {
	bin := tool(t)
	var mu sync.Mutex
	var results []Result
	n := 0
	for _, dir := range dirs {
		m, err := ReadMeta(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		for _, snap := range m.Snapshots {
			n++
			t.Run(fmt.Sprintf("%s@%d", filepath.Base(dir), snap.N), func(t *testing.T) {
				res, err := CompareSnapshot(context.Background(), bin, dir, snap)
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				t.Logf("%s (--at %s, %s)", res, snap.Time, snap.Label)
				bad := decisive(t, res.Mismatches)
				pendingIssue14(t, root, res.Scenario, bad)
				if len(bad) > 0 {
					t.Errorf("tool --at %s and kernel disagree (%s, %s):\n%s", snap.Time, dir, snap.Label, Table(bad))
				}
			})
		}
	}
	if n == 0 {
		t.Fatalf("no at-snapshots under %s", root)
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Scenario < results[j].Scenario })
	var b strings.Builder
	agree, total := 0, 0
	for _, r := range results {
		fmt.Fprintf(&b, "  %-34s %3d/%-3d endpoints agree\n", r.Scenario, r.Agree, r.Total)
		agree += r.Agree
		total += r.Total
	}
	t.Logf("kernel agreement at %d snapshot instants (--at) under %s:\n%s  %-34s %3d/%-3d", n, root, b.String(), "TOTAL", agree, total)
}

// TestKernelAgreement holds the tool against the committed kernel recordings: every endpoint
// state it reports must be what ss showed in that endpoint's namespace.
func TestKernelAgreement(t *testing.T) {
	dirs, err := ScenarioDirs(recordings)
	if err != nil {
		t.Fatalf("no recordings: %v (record them with `make testdata`)", err)
	}
	if len(dirs) == 0 {
		t.Fatalf("no scenario directories under %s (record them with `make testdata`)", recordings)
	}
	agreement(t, recordings, dirs, nil)
}

// TestKernelAt holds `tcpstate --at` against the ss snapshots taken during the scenarios, at
// instants when nothing was in flight.
func TestKernelAt(t *testing.T) {
	dirs, err := ScenarioDirs(recordings)
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no recordings under %s: %v (record them with `make testdata`)", recordings, err)
	}
	atAgreement(t, recordings, dirs)
}

// TestKernelDuplicates: in a capture where every packet appears twice (SPAN), the tool must
// report each connection once and count each packet once.
func TestKernelDuplicates(t *testing.T) {
	dirs, err := ScenarioDirs(recordings)
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no recordings under %s: %v", recordings, err)
	}
	duplicates(t, dirs)
}

func duplicates(t *testing.T, dirs []string) {
	bin := tool(t)
	n := 0
	for _, dir := range dirs {
		m, err := ReadMeta(dir)
		if err != nil || !m.Duplicates {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			conns, err := RunTool(context.Background(), bin, dir)
			if err != nil {
				t.Fatal(err)
			}
			info, err := ReadCapture(filepath.Join(dir, CaptureFile))
			if err != nil {
				t.Fatal(err)
			}
			unique := UniqueSegments(info)
			seen := map[[2]netip.AddrPort]int{}
			for _, c := range conns {
				cl, err1 := parseEndpoint(c.Client)
				sv, err2 := parseEndpoint(c.Server)
				if err1 != nil || err2 != nil {
					t.Fatalf("id %s: %v %v", c.IDString(), err1, err2)
				}
				k := [2]netip.AddrPort{cl, sv}
				if cl.Compare(sv) > 0 {
					k = [2]netip.AddrPort{sv, cl}
				}
				seen[k]++
				switch {
				case c.Packets == nil:
					t.Errorf("id %s %s > %s: no packets field", c.IDString(), cl, sv)
				case *c.Packets != unique[k]:
					t.Errorf("id %s %s > %s: tool counts %d packets, the capture holds %d distinct ones (each twice)", c.IDString(), cl, sv, *c.Packets, unique[k])
				}
			}
			for k, u := range unique {
				if seen[k] != 1 {
					t.Errorf("%s > %s (%d distinct packets): reported %d times, want once", k[0], k[1], u, seen[k])
				}
			}
			t.Logf("%d connections, %d frames", len(conns), info.Frames)
		})
	}
	if n == 0 {
		t.Fatal("no scenario with duplicated packets")
	}
}

// TestRecordingsWellFormed checks the committed recordings themselves, without the tool.
func TestRecordingsWellFormed(t *testing.T) {
	dirs, err := ScenarioDirs(recordings)
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no recordings under %s: %v", recordings, err)
	}
	total := int64(0)
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m, err := ReadMeta(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Name != filepath.Base(dir) || m.Description == "" || m.Snapshot == "" || len(m.Expect) == 0 {
				t.Errorf("incomplete scenario.json: %+v", m)
			}
			files := []string{SSClientFile, SSServerFile, SSClientTimers, SSServerTimers}
			for i, snap := range m.Snapshots {
				if snap.N != i+1 || snap.ClientFile == "" || snap.ServerFile == "" || len(snap.Expect) == 0 {
					t.Errorf("incomplete snapshot %d in scenario.json: %+v", i+1, snap)
				}
				if _, err := time.Parse(time.RFC3339Nano, snap.Time); err != nil {
					t.Errorf("snapshot %d: time %q: %v", snap.N, snap.Time, err)
				}
				files = append(files, snap.ClientFile, snap.ServerFile)
			}
			for _, f := range files {
				if _, err := ReadSSFile(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
			info, err := ReadCapture(filepath.Join(dir, CaptureFile))
			if err != nil {
				t.Fatal(err)
			}
			if len(info.TCP) == 0 {
				t.Error("capture has no TCP segments")
			}
			if info.MaxWireLen > 1514 {
				t.Errorf("frame of %d bytes: not wire-sized", info.MaxWireLen)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if fi, err := e.Info(); err == nil {
					total += fi.Size()
				}
			}
		})
	}
	if total > 3<<20 {
		t.Errorf("recordings take %d bytes, keep them under 3 MB", total)
	}
	t.Logf("%d scenarios, %d bytes", len(dirs), total)
}

// undecidable lists endpoints whose kernel state the packets cannot decide: the same packet
// sequence arises with different truths. There the tool must say its state is inferred (SPEC:
// "say so rather than guess silently"); a mismatch is excused only then, and is still logged.
var undecidable = map[string]map[string]string{
	// A SYN-ACK retransmitted once after the client's ACK, then the client's re-ACK: identical
	// on the wire whether that re-ACK is dropped too (truth SYN-RECV) or arrives (ESTAB, as in
	// random-loss). The tool takes a single loss as chance.
	"ack-dropped": {"server": "one lost ACK vs persistently dropped ACKs"},
	"fastopen":    {"server": "one lost ACK vs persistently dropped ACKs"},
	// An IPS injects RSTs towards both ends; the one towards the server leaves the router by
	// its other interface, unseen at the tap. The tool sees the RST towards the client forged
	// in the server's name (TTL), keeps the server as it was and marks it inferred: whether the
	// middlebox reset it too is not on the wire (a REJECT resets one end only).
	"ips-reset": {"server": "the middlebox's RST towards the server never passed the tap"},
	// The persist timer gives up when its next zero-window probe is due, and that backs off:
	// 1 s after it gave up (@1) the silence is still shorter than the doubled backoff, the same
	// on the wire as a stack about to probe again. The tool says ESTABLISHED, inferred (its
	// probes went unanswered); the final snapshot, later, is decided (CLOSED).
	"zero-window-blackhole": {"client": "silence shorter than the next zero-window probe's backoff"},
}

func decisive(t *testing.T, ms []Mismatch) []Mismatch {
	var bad []Mismatch
	for _, m := range ms {
		base := m.Scenario
		if i := strings.Index(base, "@"); i > 0 {
			base = base[:i]
		}
		if why, ok := undecidable[base][m.Endpoint]; ok && m.Inferred {
			t.Logf("undecidable from the wire, tool said inferred: %s %s %s: tool %s, kernel %s (%s)", m.Scenario, m.Conn, m.Endpoint, m.Tool, m.Kernel, why)
			continue
		}
		bad = append(bad, m)
	}
	return bad
}

// pendingIssue14 skips, visibly, a recording listed in issue14Pending that still disagrees, and
// fails one of the committed recordings that is listed but agrees.
func pendingIssue14(t *testing.T, root, scenario string, bad []Mismatch) {
	t.Helper()
	why, ok := issue14Pending[scenario]
	if !ok {
		return
	}
	if len(bad) > 0 {
		t.Skipf("issue 14: %s\n%s", why, Table(bad))
	}
	if root == recordings {
		t.Errorf("listed in issue14Pending (%s) but agrees with the kernel now: take it off the list", why)
	}
}
