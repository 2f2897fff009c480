// Zeek's connection timers (ExpireTimer, inactivity, attempt and close delays) and the reuse
// check that ends a row on a new SYN.

package zeek

import (
	"time"

	"github.com/tcpstate/tcpstate/capture"
)

func (r *zrow) setInactivity(d time.Duration) { r.inactivity = d }

func (r *zrow) addTimer(t capture.Time) {
	if len(r.expireAt) < 16 {
		r.expireAt = append(r.expireAt, t)
	}
}

func (r *zrow) cancelTimers() {
	r.attemptAt = 0
	r.expireAt = r.expireAt[:0] // the buffer is kept for the next row (newZrow)
}

// timerDue reports whether a timer is due by t: if not, expired(t) would do nothing and
// report false. It inlines.
func (r *zrow) timerDue(t capture.Time) bool {
	if (r.deleteAt != 0 && t >= r.deleteAt) || r.lastTime.Add(r.inactivity) <= t ||
		(r.attemptAt != 0 && t >= r.attemptAt) {
		return true
	}
	for _, e := range r.expireAt {
		if e <= t {
			return true
		}
	}
	return false
}

// expired runs Zeek's timers up to t (they fire before a packet of time t is processed) and
// reports whether one of them removed the connection.
func (r *zrow) expired(t capture.Time) bool {
	if r.deleteAt != 0 && t >= r.deleteAt {
		return true
	}
	if r.lastTime.Add(r.inactivity) <= t {
		return true // Connection::InactivityTimer: last_time + timeout <= t
	}
	if r.attemptAt != 0 && t >= r.attemptAt {
		r.attemptAt = 0
		o, p := r.ep[r.orig].state, r.ep[1-r.orig].state
		if r.active && (o == SynSent || o == SynAckSent) && p == Inactive {
			return true // AttemptTimer: connection_attempt
		}
	}
	// Usually no ExpireTimer is due: the list is left as it is.
	for _, e := range r.expireAt {
		if e <= t {
			return r.runExpireTimers(t)
		}
	}
	return false
}

// runExpireTimers fires the ExpireTimers due by t (at least one is) and reports whether one of
// them removed the connection.
func (r *zrow) runExpireTimers(t capture.Time) bool {
	kept := r.expireAt[:0]
	removed := false
	for _, e := range r.expireAt {
		for e <= t && !removed {
			if !r.active {
				e = 0
				break
			}
			if r.expireRemoves(e) {
				removed = true
				break
			}
			e = e.Add(zeekSessionTimer)
		}
		if e != 0 {
			kept = append(kept, e)
		}
	}
	r.expireAt = kept
	return removed
}

// expireRemoves is the test of TCPSessionAdapter::ExpireTimer at time t.
func (r *zrow) expireRemoves(t capture.Time) bool {
	if r.lastTime.Add(zeekConnectionLinger) >= t {
		return false
	}
	o, p := &r.ep[r.orig], &r.ep[1-r.orig]
	if o.didClose || p.didClose {
		if (o.didClose && p.didClose) || o.state == Reset || p.state == Reset ||
			o.state == Inactive || p.state == Inactive {
			return true
		}
	}
	return o.state == Inactive && p.state == Inactive
}

// isReuse is TCPSessionAdapter::IsReuse: a SYN that starts a new connection on the 4-tuple.
func (r *zrow) isReuse(seg *capture.Segment, from Side) bool {
	f := seg.Flags
	if !f.Has(capture.SYN) {
		return false
	}
	connOrig := &r.ep[r.orig]
	if f.Has(capture.ACK) {
		if connOrig.state != Inactive {
			return false
		}
		connOrig = &r.ep[1-r.orig]
	}
	if !(r.ep[0].didClose || r.ep[1].didClose) {
		if seg.Seq == capture.Seq(connOrig.startSeq) {
			return false
		}
		resp := &r.ep[1-r.orig]
		if !f.Has(capture.ACK) && connOrig.state == SynAckSent && resp.state == Inactive &&
			seg.Seq == capture.Seq(resp.startSeq) {
			return false // SYN and SYN-ACK reversed: Process flips the roles
		}
	}
	return true
}
