package flowtable

import (
	"github.com/tcpstate/tcpstate/tracker"
	"github.com/tcpstate/tcpstate/zeek"
)

// Reorder puts finished connections back in ID order (order of first packet, SPEC: JSON lines)
// for output: a streaming table finishes them in whatever order they end. One that finishes
// before an earlier one is packed (dormant.go: a few hundred bytes) and held until every
// earlier ID has gone out.
//
// What it holds is bounded by what ends out of order: in a capture where connections end
// roughly in the order they began it is a handful; behind a connection that stays open for
// the whole capture, it is every connection that finished since that one began (at their
// packed size). Held reports it.
type Reorder struct {
	next    uint64
	held    map[uint64]string
	cs      codecState
	zcfg    *zeek.Config
	out     func(*tracker.Conn)
	scratch tracker.Conn
	peak    int
}

// NewReorder returns a Reorder that hands connections to out in ID order, starting at ID 1,
// for connections of a table set up with cfg.
func NewReorder(cfg *Config, out func(*tracker.Conn)) *Reorder {
	return &Reorder{next: 1, held: make(map[uint64]string), zcfg: &cfg.Zeek, out: out}
}

// Put takes a finished connection: out sees it now if every earlier ID has gone out, else
// later. c is not kept: the caller may reuse it once Put returns.
func (r *Reorder) Put(c *tracker.Conn) {
	if c.ID != r.next {
		r.held[c.ID] = r.cs.packConn(c)
		r.peak = max(r.peak, len(r.held))
		return
	}
	r.out(c)
	r.next++
	for {
		blob, ok := r.held[r.next]
		if !ok {
			return
		}
		delete(r.held, r.next)
		r.scratch = tracker.Conn{}
		r.cs.unpackConn(blob, &r.scratch, r.zcfg)
		r.out(&r.scratch)
		r.next++
	}
}

// Held is how many connections wait for an earlier one now, and the most that ever did.
func (r *Reorder) Held() (now, peak int) { return len(r.held), r.peak }

// Next is the ID the Reorder hands out next.
func (r *Reorder) Next() uint64 { return r.next }
