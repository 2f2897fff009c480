package kernellab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// RunTool runs `tool -r DIR/capture.pcap -o json [extra...]` and parses its JSON lines.
func RunTool(ctx context.Context, tool, dir string, extra ...string) ([]ToolConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := append([]string{"-r", filepath.Join(dir, CaptureFile), "-o", "json"}, extra...)
	cmd := exec.CommandContext(ctx, tool, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %v\nstderr: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(errb.String()))
	}
	conns, err := ParseToolJSON(&out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	return conns, nil
}

// CompareDir runs the tool on one recorded scenario directory and compares its endpoint
// states with the directory's ss snapshots (taken right after the capture; for a scenario
// whose snapshot waited for kernel timers, final_at, the tool is asked with --at for the
// states at the snapshot instant).
func CompareDir(ctx context.Context, tool, dir string) (Result, error) {
	name := filepath.Base(dir)
	var extra []string
	if m, err := ReadMeta(dir); err == nil && m.Name != "" {
		name = m.Name
		if m.FinalAt {
			extra = []string{"--at", m.Snapshot}
		}
		extra = append(extra, m.ToolArgs...)
	}
	ssC, err := ReadSSFile(filepath.Join(dir, SSClientFile))
	if err != nil {
		return Result{Scenario: name}, err
	}
	ssS, err := ReadSSFile(filepath.Join(dir, SSServerFile))
	if err != nil {
		return Result{Scenario: name}, err
	}
	conns, err := RunTool(ctx, tool, dir, extra...)
	if err != nil {
		return Result{Scenario: name}, err
	}
	return Compare(name, conns, ssC, ssS), nil
}

// CompareSnapshot runs `tool --at snap.Time` on a scenario directory and compares the states
// with the ss files of that at-snapshot.
func CompareSnapshot(ctx context.Context, tool, dir string, snap AtSnapshot) (Result, error) {
	name := fmt.Sprintf("%s@%d", filepath.Base(dir), snap.N)
	ssC, err := ReadSSFile(filepath.Join(dir, snap.ClientFile))
	if err != nil {
		return Result{Scenario: name}, err
	}
	ssS, err := ReadSSFile(filepath.Join(dir, snap.ServerFile))
	if err != nil {
		return Result{Scenario: name}, err
	}
	conns, err := RunTool(ctx, tool, dir, "--at", snap.Time)
	if err != nil {
		return Result{Scenario: name}, err
	}
	return Compare(name, conns, ssC, ssS), nil
}
