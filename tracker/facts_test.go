package tracker

import (
	"testing"
	"unsafe"
)

// Every kind of detail belongs to a diagnosis, and the facts stay small: every endpoint
// carries an Evidence, every diagnosis a Detail.
func TestFacts(t *testing.T) {
	for k := DetailKind(1); k < numDetailKinds; k++ {
		if k.ID() == "" {
			t.Errorf("detail kind %d belongs to no diagnosis", k)
		}
	}
	if DetailNone.ID() != "" || numDetailKinds.ID() != "" {
		t.Errorf("DetailNone or an unknown kind belongs to a diagnosis")
	}
	if n := unsafe.Sizeof(Evidence{}); n > 32 {
		t.Errorf("Evidence takes %d bytes, want at most 32", n)
	}
	if n := unsafe.Sizeof(Detail{}); n > 56 {
		t.Errorf("Detail takes %d bytes, want at most 56", n)
	}
}
