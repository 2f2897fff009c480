package flowtable

import (
	"runtime"
	"sync/atomic"

	"github.com/tcpstate/tcpstate/internal/pack"
)

// The blob arena: where a streaming table keeps the blobs of its dormant connections. A blob
// made as a string of its own costs an allocation, and a table that packs a connection per
// handshake (workload A: every connection is packed as it closes) spent a tenth of its time
// in the allocator, most of it preparing fresh spans for small objects. The arena instead
// copies blobs one after the other into chunks of chunkSize bytes; an entry knows its blob by
// chunk, offset and length (no pointer), and a chunk is never written again where a blob
// lives. A blob is decoded where it is (readable), not from a copy: the decoder reads a word
// where a varint starts, which may run up to pack.WordRoom bytes past the blob's end (into
// the next blob, or the room a chunk keeps at its end), and uses none of them.
//
// Chunks are memory of their own, outside the Go heap (mapMemory: anonymous mappings, in
// transparent huge pages where the kernel allows them), for two reasons measured on workload B
// (a million dormant connections): the heap's goal is twice what it holds after a collection,
// so blobs on the heap cost twice their size in peak memory (210 MB against 179 MB); and
// faulting fresh memory in 4 KiB pages was a tenth of the run on this machine (a VM), a
// 2 MiB page costs about as much as one of them. Nothing in a chunk is a Go pointer, and
// nothing refers into a chunk once its blob is released: decoding copies what it keeps.
//
// A chunk is freed when its last blob is: each counts the bytes of its blobs still in use.
// A chunk that a few long-dormant blobs keep alive would hold the memory of all the others,
// so the sweep (stream.sweep, which visits every dormant entry) moves the blobs of a chunk
// less than a quarter used into the current one (relocate): the arena then never holds more
// than about four times the bytes of its blobs, plus one chunk.

const (
	chunkSize = 2 << 20
	// blobs larger than this are strings of their own, in stream.big (rare: a connection
	// with many Zeek rows or RST notes).
	chunkMaxBlob = 16 << 10
)

// mappedBytes counts the bytes of memory of its own (mapMemory) in use, all tables together.
var mappedBytes atomic.Int64

// MappedBytes is how much memory the flow tables hold outside the Go heap (blob arenas, large
// indexes and entry chunks): what runtime.MemStats does not count. Tests that bound memory
// add it to the heap's.
func MappedBytes() int64 { return mappedBytes.Load() }

// hugePage is the size of a transparent huge page (x86-64, arm64 with 4 KiB pages).
const hugePage = 2 << 20

type chunk struct {
	buf  []byte
	live int    // bytes of blobs in use
	mem  []byte // the memory buf is in, as mapMemory made it (to free it)
}

type arena struct {
	*chunks // shared with the cleanup that frees them (newArena)
	free    []uint16
	cur     uint16 // the chunk being filled (0: none yet)
}

// chunks are an arena's chunks; [0] is unused: chunk number 0 means "not in the arena".
// freed: freeAll ran (for the tests: the cleanup runs on a goroutine of its own).
type chunks struct {
	list  []chunk
	freed atomic.Bool
}

// newArena returns an empty arena whose chunks are freed when owner is collected, if they
// were not before (a table dropped before its end).
func newArena[T any](owner *T) arena {
	cs := &chunks{}
	runtime.AddCleanup(owner, (*chunks).freeAll, cs)
	return arena{chunks: cs}
}

// freeAll frees every chunk (nothing may use their blobs any more).
func (cs *chunks) freeAll() {
	for i := range cs.list {
		if cs.list[i].mem != nil {
			freeMemory(cs.list[i].mem)
		}
		cs.list[i] = chunk{}
	}
	cs.freed.Store(true)
}

// reset frees every chunk: every blob was released (the end of a streaming run).
func (a *arena) reset() {
	if a.chunks != nil {
		a.freeAll()
		a.list = a.list[:0]
	}
	a.free, a.cur = a.free[:0], 0
}

// store copies b into the arena and returns where it is: its chunk and offset. It reports
// false for a blob the arena does not take (larger than chunkMaxBlob, or the arena is full).
func (a *arena) store(b []byte) (c uint16, off uint32, ok bool) {
	if len(b) == 0 || len(b) > chunkMaxBlob {
		return 0, 0, false
	}
	if c = a.current(len(b)); c == 0 {
		return 0, 0, false
	}
	ch := &a.list[c]
	off = uint32(len(ch.buf))
	ch.buf = append(ch.buf, b...)
	ch.live += len(b)
	return c, off, true
}

// current returns a chunk with room for n more bytes, and pack.WordRoom after them (readable),
// starting a new one if needed (0: the arena is full, 65,535 chunks: 4 GiB).
func (a *arena) current(n int) uint16 {
	if a.cur != 0 {
		if ch := &a.list[a.cur]; cap(ch.buf)-len(ch.buf) >= n+pack.WordRoom {
			return a.cur
		}
		a.retire(a.cur)
	}
	if len(a.list) == 0 {
		a.list = append(a.list, chunk{})
	}
	var c uint16
	if k := len(a.free); k > 0 {
		c = a.free[k-1]
		a.free = a.free[:k-1]
	} else if len(a.list) <= 0xffff {
		c = uint16(len(a.list))
		a.list = append(a.list, chunk{})
	} else {
		a.cur = 0
		return 0
	}
	buf, mem := mapMemory(chunkSize)
	a.list[c] = chunk{buf: buf[:0], mem: mem}
	a.cur = c
	return c
}

// retire: chunk c is no longer the one being filled; if nothing in it is used, free it.
func (a *arena) retire(c uint16) {
	if a.cur == c {
		a.cur = 0
	}
	if a.list[c].live == 0 {
		if mem := a.list[c].mem; mem != nil {
			freeMemory(mem)
		}
		a.list[c] = chunk{}
		a.free = append(a.free, c)
	}
}

// release: the blob of n bytes in chunk c is no longer used.
func (a *arena) release(c uint16, n uint32) {
	ch := &a.list[c]
	ch.live -= int(n)
	if ch.live == 0 && c != a.cur {
		a.retire(c)
	}
}

// readable is the blob of n bytes at offset off of chunk c, to decode in place: with the
// room after it that pack.Codec.Reset needs (the next blob, or the room a chunk keeps at its
// end).
func (a *arena) readable(c uint16, off, n uint32) []byte {
	buf := a.list[c].buf
	return buf[off : off+n : off+n+pack.WordRoom]
}

// sparse reports whether chunk c is worth emptying: not the current one, and less than a
// quarter of it in use.
func (a *arena) sparse(c uint16) bool {
	return c != 0 && c != a.cur && a.list[c].live < chunkSize/4
}

// relocate moves the blob of n bytes at offset off of chunk c into the current chunk, and
// returns where it is now.
func (a *arena) relocate(c uint16, off, n uint32) (uint16, uint32) {
	nc, noff, ok := a.store(a.list[c].buf[off : off+n])
	if !ok {
		return c, off // the arena is full: it stays
	}
	a.release(c, n)
	return nc, noff
}

// mapped is memory outside the Go heap (mapMemory) that one owner uses, freed by release or,
// if the owner is collected first, by a cleanup.
type mapped struct{ mem []byte }

// mapOwned maps size bytes (zeroed) for owner.
func mapOwned[T any](owner *T, size int) (*mapped, []byte) {
	buf, mem := mapMemory(size)
	m := &mapped{mem: mem}
	if mem != nil {
		runtime.AddCleanup(owner, (*mapped).release, m)
	}
	return m, buf
}

// release frees the memory (nothing may use it any more); again, it does nothing.
func (m *mapped) release() {
	if m != nil && m.mem != nil {
		freeMemory(m.mem)
		m.mem = nil
	}
}
