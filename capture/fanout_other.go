//go:build !linux

package capture

import "errors"

// AF_PACKET exists only on Linux: elsewhere live capture goes through libpcap.

// FanoutWhyNot says why AF_PACKET fanout cannot be used: it is Linux only.
func FanoutWhyNot(cfg LiveConfig) string { return "AF_PACKET sockets exist only on Linux" }

// Fanout is not available on this system.
type Fanout struct{}

// OpenFanout fails: AF_PACKET is Linux only.
func OpenFanout(cfg LiveConfig, n int) ([]*Fanout, error) {
	return nil, errors.New("AF_PACKET capture is Linux only; capture through libpcap (--libpcap)")
}

func (f *Fanout) Interface() string              { return "" }
func (f *Fanout) Stop()                          {}
func (f *Fanout) Poll(seg *Segment) (bool, bool) { return false, false }
func (f *Fanout) Stats() Stats                   { return Stats{} }
func (f *Fanout) Counts() Stats                  { return Stats{} }
func (f *Fanout) KernelDropped() uint64          { return 0 }
func (f *Fanout) Errs() []*ReadError             { return nil }
func (f *Fanout) Flush() error                   { return nil }
func (f *Fanout) Close() error                   { return nil }
