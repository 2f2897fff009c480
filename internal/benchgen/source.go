package benchgen

import "github.com/tcpstate/tcpstate/capture"

// SliceSource is a capture.Source over segments already decoded (a workload read once, replayed
// many times by benchmarks and by tests that compare drivers).
type SliceSource struct {
	segs []capture.Segment
	i    int
}

// NewSliceSource returns a source that gives segs in order.
func NewSliceSource(segs []capture.Segment) *SliceSource { return &SliceSource{segs: segs} }

func (s *SliceSource) Next(seg *capture.Segment) bool {
	if s.i == len(s.segs) {
		return false
	}
	*seg = s.segs[s.i]
	s.i++
	return true
}

func (s *SliceSource) Errs() []*capture.ReadError { return nil }
func (s *SliceSource) Stats() capture.Stats       { return capture.Stats{TCP: uint64(s.i)} }
func (s *SliceSource) Close() error               { return nil }
