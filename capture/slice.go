package capture

// SliceSource is a Source over segments already decoded (a workload read once, replayed
// many times by benchmarks and by tests that compare drivers).
type SliceSource struct {
	segs []Segment
	i    int
}

// NewSliceSource returns a source that gives segs in order.
func NewSliceSource(segs []Segment) *SliceSource { return &SliceSource{segs: segs} }

func (s *SliceSource) Next(seg *Segment) bool {
	if s.i == len(s.segs) {
		return false
	}
	*seg = s.segs[s.i]
	s.i++
	return true
}

func (s *SliceSource) Errs() []*ReadError { return nil }
func (s *SliceSource) Stats() Stats       { return Stats{TCP: uint64(s.i)} }
func (s *SliceSource) Close() error       { return nil }
