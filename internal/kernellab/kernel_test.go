package kernellab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The committed recordings, relative to this package.
var recordings = filepath.Join("..", "..", "testdata", "pcaps", "kernel")

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
// the per-scenario and total agreement.
func agreement(t *testing.T, root string, dirs []string) {
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
			if len(res.Mismatches) > 0 {
				t.Errorf("tool and kernel disagree (%s):\n%s", filepath.Join(dir), Table(res.Mismatches))
			}
		})
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Scenario < results[j].Scenario })
	var b strings.Builder
	agree, total := 0, 0
	for _, r := range results {
		fmt.Fprintf(&b, "  %-28s %3d/%-3d endpoints agree\n", r.Scenario, r.Agree, r.Total)
		agree += r.Agree
		total += r.Total
	}
	t.Logf("kernel agreement under %s:\n%s  %-28s %3d/%-3d", root, b.String(), "TOTAL", agree, total)
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
	agreement(t, recordings, dirs)
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
			for _, f := range []string{SSClientFile, SSServerFile, SSClientTimers, SSServerTimers} {
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
	if total > 2<<20 {
		t.Errorf("recordings take %d bytes, keep them under 2 MB", total)
	}
}
