package tracker

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

// stamp is a packet time as the tracker keeps it in a connection's evidence: capture.Time (one
// compact time type for the whole engine: Zeek rows and the flow table's blobs use it too),
// under the tracker's own lower-case names. Times that leave the tracker (Endpoint.Since,
// Deadline, events) are time.Time again (UTC).
type stamp capture.Time

const (
	stampMin = stamp(capture.TimeMin)
	stampMax = stamp(capture.TimeMax)
)

// stampOf is t as a stamp: unset for the zero time, clamped when out of range.
func stampOf(t time.Time) stamp { return stamp(capture.TimeOf(t)) }

func (s stamp) time() time.Time           { return capture.Time(s).Std() }
func (s stamp) unixNano() int64           { return capture.Time(s).UnixNano() }
func (s stamp) isZero() bool              { return s == 0 }
func (s stamp) before(u stamp) bool       { return s < u }
func (s stamp) after(u stamp) bool        { return s > u }
func (s stamp) sub(u stamp) time.Duration { return capture.Time(s).Sub(capture.Time(u)) }
func (s stamp) add(d time.Duration) stamp { return stamp(capture.Time(s).Add(d)) }
func later(a, b stamp) stamp              { return max(a, b) }
