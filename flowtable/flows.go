package flowtable

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"time"
	"unsafe"
)

// The flow table: which connection instance a 4-tuple currently belongs to. It is the first
// thing every packet touches, so it is built for that: the 4-tuple is hashed once into 64 bits
// (the same whichever way the packet travels), and an open-addressing index of 8-byte slots
// (32 bits of that hash beside an entry number) finds the entry with, usually, one probe and
// one comparison of the addresses. Entries live in one slice and are recycled, so the table
// allocates nothing per packet or per connection once it has grown.

// FlowHash is the 4-tuple hash: 64 bits, the same for both directions of a flow, and the same
// on every machine and every run (no random seed), so that --shard I/N splits a capture the
// same way wherever it runs. Each endpoint (address as 16 bytes, IPv4 mapped; port) is mixed
// on its own with two 64×64→128-bit multiplications, and the two are added, which makes the
// result independent of their order.
func FlowHash(src, dst netip.AddrPort) uint64 {
	return endpointHash(src) + endpointHash(dst)
}

func endpointHash(ap netip.AddrPort) uint64 {
	var hi, lo uint64
	if addr := ap.Addr(); addr.Is4() {
		// The 16 bytes of an IPv4 address are ::ffff:a.b.c.d, so these are the same two
		// halves As16 gives. Going through As16's array costs more than the hash itself:
		// it is written 8 bytes at a time and copied 16 at a time, and that copy waits for
		// the stores to retire (no store-to-load forwarding): ~20 ns a packet.
		a := addr.As4()
		lo = 0xffff<<32 | uint64(binary.BigEndian.Uint32(a[:]))
	} else {
		a := addr.As16()
		hi, lo = binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(a[8:])
	}
	h1, l1 := bits.Mul64(hi^0xa0761d6478bd642f, lo^0xe7037ed1a0b428db)
	h2, l2 := bits.Mul64(h1^l1^uint64(ap.Port())*0x8ebc6af09c88c6e3, 0x589965cc75374cc3)
	return h2 ^ l2
}

// ShardOf says which of n shards (0..n-1) a flow of hash h belongs to, for --shard I/N. It
// takes the hash's top 32 bits (the table index uses the bottom ones) and scales them to n.
func ShardOf(h uint64, n int) int {
	return int((h >> 32) * uint64(n) >> 32)
}

// Entry states.
const (
	entFree     uint8 = iota
	entIndexed        // the current instance of its 4-tuple: in the index
	entDetached       // replaced by a new instance of its 4-tuple: waits for the end
	entQuiet          // the current instance, closed at both ends: in the quiet index
)

// entry is one connection in the table: live (unpacked) or dormant (packed into a blob, see
// dormant.go). It is kept small (28 bytes) and holds no pointer: a table may hold millions,
// the collector need not scan them, and their chunks past the first ones are memory of their
// own (entries.add), outside the Go heap's goal.
type entry struct {
	// live is 1 + the number of its live in Table.lives (0: dormant, or free).
	live int32
	// Dormant: its blob, off bytes into arena chunk chunk (0: a blob of its own, in
	// stream.big), size bytes long.
	off, size uint32
	chunk     uint16
	state     uint8
	half      bool // no packet from one of its sides yet (eviction order, --max-flows)
	// hashLo is the low half of the flow hash: where the entry's slot is in the index, which
	// holds it too.
	hashLo uint32
	// lastAny is the second (Unix, rounded up) of its latest segment, duplicates included:
	// how long it has been quiet decides when it is finished.
	lastAny uint32
	// hint: a dormant connection cannot be finished before this second (Unix), as worked
	// out when it was packed; the periodic sweep skips it until then.
	hint uint32
}

// entries is where entries live: in chunks that never move, so that the table grows without
// copying (or holding twice) what it has. Chunk k holds entFirst << k entries; from
// entMapped on, a chunk is memory of its own (mapOwned, in huge pages where it fills one).
type entries struct {
	chunks [][]entry
	n      int32 // entries handed out so far (free or not)
	mem    []*mapped
}

const (
	entFirstBits = 10
	entFirst     = 1 << entFirstBits // entries in chunk 0
	entMapped    = 6                 // chunk 6 (65,536 entries, 1.8 MB) and later are mapped
)

// at is entry ei: chunk k = bits.Len(ei+entFirst) - entFirstBits - 1.
func (x *entries) at(ei int32) *entry {
	q := uint32(ei) + entFirst
	k := bits.Len32(q) - entFirstBits - 1
	return &x.chunks[k][q-entFirst<<k]
}

// reset forgets every entry (the end of a streaming run), freeing the mapped chunks.
func (x *entries) reset() {
	for _, m := range x.mem {
		m.release()
	}
	*x = entries{}
}

// add makes a new entry, in the table owner.
func (x *entries) add(owner *Table) int32 {
	k := len(x.chunks)
	if int(x.n) == entFirst<<k-entFirst {
		size := entFirst << k
		if k >= entMapped {
			m, buf := mapOwned(owner, size*int(unsafe.Sizeof(entry{})))
			x.chunks = append(x.chunks, unsafe.Slice((*entry)(unsafe.Pointer(unsafe.SliceData(buf))), size))
			x.mem = append(x.mem, m)
		} else {
			x.chunks = append(x.chunks, make([]entry, size))
		}
	}
	x.n++
	return x.n - 1
}

// secs is t's Unix second, rounded up, within what 32 bits hold (1970 to 2106, as pcap
// timestamps): the clock of the decisions to finish connections, not of any output.
func secs(t time.Time) uint32 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return uint32(min(max(s, 0), math.MaxUint32-1))
}

// flowIndex is the open-addressing index: slot = hash's bottom 32 bits << 32 | entry number + 1
// (0: empty), at the position given by the same bits (masked), linear probing, deletion by
// backward shift (no tombstones). The slot holds the bits of its own position, so growing the
// index and shifting slots back never read the entries (a cache miss each), and the bits above
// the mask still tell most neighbours apart before an entry is read.
//
// An index of a quarter of a million slots or more (2 MiB) is memory of its own, outside the
// Go heap (mapOwned, as the blob arena): it holds no pointer, and a flood's index (a million
// entries, 16 MiB) would otherwise double in the heap's goal, old copies included.
type flowIndex struct {
	slots []uint64
	n     int
	mem   *mapped // the slots' own memory (nil: on the heap)
}

// offHeapSlots: an index this large or larger is mapped (flowIndex).
const offHeapSlots = hugePage / 8

// release frees the slots' own memory: the index is being dropped.
func (x *flowIndex) release() { x.mem.release() }

func (x *flowIndex) mask() uint64 { return uint64(len(x.slots) - 1) }

// grow doubles the index (or makes the first one) and reinserts every entry; owner is the
// table it belongs to.
func (x *flowIndex) grow(owner *Table) {
	size := max(len(x.slots)*2, 1024)
	old, oldMem := x.slots, x.mem
	if size >= offHeapSlots {
		m, buf := mapOwned(owner, size*8)
		x.slots, x.mem = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(buf))), size), m
	} else {
		x.slots, x.mem = make([]uint64, size), nil
	}
	defer oldMem.release()
	m := x.mask()
	for _, s := range old {
		if s == 0 {
			continue
		}
		for i := s >> 32 & m; ; i = (i + 1) & m {
			if x.slots[i] == 0 {
				x.slots[i] = s
				break
			}
		}
	}
}

// slot is what the index holds for entry ei of hash low half lo.
func slot(lo uint32, ei int32) uint64 { return uint64(lo)<<32 | uint64(ei+1) }

// insert adds entry ei (of hash low half lo) to the index of table owner.
func (x *flowIndex) insert(lo uint32, ei int32, owner *Table) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow(owner)
	}
	m := x.mask()
	s := slot(lo, ei)
	for i := uint64(lo) & m; ; i = (i + 1) & m {
		if x.slots[i] == 0 {
			x.slots[i] = s
			x.n++
			return
		}
	}
}

// position finds the slot holding entry ei (of hash low half lo); -1 if it is not in the index.
func (x *flowIndex) position(lo uint32, ei int32) int {
	if len(x.slots) == 0 {
		return -1
	}
	m := x.mask()
	want := slot(lo, ei)
	for i := uint64(lo) & m; ; i = (i + 1) & m {
		switch x.slots[i] {
		case want:
			return int(i)
		case 0:
			return -1
		}
	}
}

// replace makes the slot of entry old (hash low half lo) point to entry ei instead.
func (x *flowIndex) replace(lo uint32, old, ei int32) {
	if p := x.position(lo, old); p >= 0 {
		x.slots[p] = slot(lo, ei)
	}
}

// remove takes entry ei (of hash low half lo) out of the index.
func (x *flowIndex) remove(lo uint32, ei int32) {
	p := x.position(lo, ei)
	if p < 0 {
		return
	}
	m := x.mask()
	i := uint64(p)
	x.slots[i] = 0
	x.n--
	// Backward shift: move later slots of the probe run into the hole when their home
	// position allows it.
	for j := (i + 1) & m; x.slots[j] != 0; j = (j + 1) & m {
		home := x.slots[j] >> 32 & m
		if (j-home)&m >= (j-i)&m {
			x.slots[i], x.slots[j] = x.slots[j], 0
			i = j
		}
	}
}
