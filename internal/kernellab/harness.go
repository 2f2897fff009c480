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

// RunTool runs `tool -r DIR/capture.pcap -o json` and parses its JSON lines.
func RunTool(ctx context.Context, tool, dir string) ([]ToolConn, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, "-r", filepath.Join(dir, CaptureFile), "-o", "json")
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
// states with the directory's ss snapshots.
func CompareDir(ctx context.Context, tool, dir string) (Result, error) {
	name := filepath.Base(dir)
	if m, err := ReadMeta(dir); err == nil && m.Name != "" {
		name = m.Name
	}
	ssC, err := ReadSSFile(filepath.Join(dir, SSClientFile))
	if err != nil {
		return Result{Scenario: name}, err
	}
	ssS, err := ReadSSFile(filepath.Join(dir, SSServerFile))
	if err != nil {
		return Result{Scenario: name}, err
	}
	conns, err := RunTool(ctx, tool, dir)
	if err != nil {
		return Result{Scenario: name}, err
	}
	return Compare(name, conns, ssC, ssS), nil
}
