package flowtable

import (
	"unsafe"

	"github.com/tcpstate/tcpstate/internal/pack"
)

// The blob arena: where a streaming table keeps the blobs of its dormant connections. A blob
// made as a string of its own costs an allocation, and a table that packs a connection per
// handshake (workload A: every connection is packed as it closes) spends a tenth of its time
// in the allocator, most of it preparing fresh spans for small objects. The arena instead
// copies blobs one after the other into chunks of chunkSize bytes, and a blob is a string
// over its bytes (a chunk is never written again where a blob lives, so the string stays
// what it was). A blob is decoded where it is (readable), not from a copy: the decoder reads
// a word where a varint starts, which may run up to pack.WordRoom bytes past the blob's end
// (into the next blob, or the room a chunk keeps at its end), and uses none of them.
//
// A chunk is freed when its last blob is: each counts the bytes of its blobs still in use.
// A chunk that a few long-dormant blobs keep alive would hold the memory of all the others,
// so the sweep (stream.sweep, which visits every dormant entry) moves the blobs of a chunk
// less than a quarter used into the current one (relocate): the arena then never holds more
// than about four times the bytes of its blobs, plus one chunk.

const (
	chunkSize = 64 << 10
	// blobs larger than this are strings of their own (rare: a connection with long
	// diagnoses or many Zeek rows).
	chunkMaxBlob = chunkSize / 16
)

type chunk struct {
	buf  []byte
	live int // bytes of blobs in use
}

type arena struct {
	chunks []chunk // [0] is unused: chunk number 0 means "not in the arena"
	free   []uint16
	cur    uint16 // the chunk being filled (0: none yet)
}

// store copies b into the arena and returns it as a string, with the chunk it is in (0: a
// string of its own).
func (a *arena) store(b []byte) (string, uint16) {
	if len(b) == 0 {
		return "", 0
	}
	if len(b) > chunkMaxBlob {
		return string(b), 0
	}
	c := a.current(len(b))
	if c == 0 {
		return string(b), 0
	}
	ch := &a.chunks[c]
	off := len(ch.buf)
	ch.buf = append(ch.buf, b...)
	ch.live += len(b)
	return unsafe.String(&ch.buf[off], len(b)), c
}

// current returns a chunk with room for n more bytes, and pack.WordRoom after them (readable),
// starting a new one if needed (0: the arena is full, 65,535 chunks: 4 GiB).
func (a *arena) current(n int) uint16 {
	if a.cur != 0 {
		if ch := &a.chunks[a.cur]; cap(ch.buf)-len(ch.buf) >= n+pack.WordRoom {
			return a.cur
		}
		a.retire(a.cur)
	}
	if len(a.chunks) == 0 {
		a.chunks = append(a.chunks, chunk{})
	}
	var c uint16
	if k := len(a.free); k > 0 {
		c = a.free[k-1]
		a.free = a.free[:k-1]
	} else if len(a.chunks) <= 0xffff {
		c = uint16(len(a.chunks))
		a.chunks = append(a.chunks, chunk{})
	} else {
		a.cur = 0
		return 0
	}
	a.chunks[c] = chunk{buf: make([]byte, 0, chunkSize)}
	a.cur = c
	return c
}

// retire: chunk c is no longer the one being filled; if nothing in it is used, free it.
func (a *arena) retire(c uint16) {
	if a.cur == c {
		a.cur = 0
	}
	if a.chunks[c].live == 0 {
		a.chunks[c] = chunk{}
		a.free = append(a.free, c)
	}
}

// release: the blob s, stored in chunk c, is no longer used.
func (a *arena) release(s string, c uint16) {
	if c == 0 {
		return
	}
	ch := &a.chunks[c]
	ch.live -= len(s)
	if ch.live == 0 && c != a.cur {
		a.retire(c)
	}
}

// readable is the blob s of chunk c as bytes to decode in place: with the room after them
// that pack.Codec.Reset needs, in the chunk (none for a blob outside the arena: Reset copies
// it).
func readable(s string, c uint16) []byte {
	n := len(s)
	if c != 0 {
		n += pack.WordRoom
	}
	return unsafe.Slice(unsafe.StringData(s), n)[:len(s)]
}

// sparse reports whether chunk c is worth emptying: not the current one, and less than a
// quarter of it in use.
func (a *arena) sparse(c uint16) bool {
	return c != 0 && c != a.cur && a.chunks[c].live < chunkSize/4
}

// relocate moves the blob s of chunk c into the current chunk, and returns it and its new
// chunk.
func (a *arena) relocate(s string, c uint16) (string, uint16) {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	ns, nc := a.store(b)
	a.release(s, c)
	return ns, nc
}
