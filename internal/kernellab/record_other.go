//go:build !linux

package kernellab

import (
	"context"
	"errors"
)

// Scenario is a kernel recording scenario (recording needs Linux).
type Scenario struct {
	Name        string
	Description string
	Tap         string
	Slow        bool
}

// RecordOptions tune RecordAll.
type RecordOptions struct {
	Only     []string
	Parallel int
	Retries  int
	Tap      string
	SkipSlow bool
	Logf     func(format string, args ...any)
}

// Scenarios is empty off Linux.
func Scenarios() []*Scenario { return nil }

// Preflight tells why the lab cannot run here.
func Preflight() error { return errors.New("the kernel lab needs Linux network namespaces") }

// RecordAll cannot record off Linux.
func RecordAll(ctx context.Context, out string, opt RecordOptions) ([]*ScenarioMeta, error) {
	return nil, Preflight()
}
