package flowtable

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tcpstate/tcpstate/internal/pack"
)

// TestArena: blobs read back as stored, chunks are freed with their last blob, and relocating
// the blobs of sparse chunks bounds what the arena holds to about four times what is in use.
func TestArena(t *testing.T) {
	var owner struct{}
	a := newArena(&owner)
	type held struct {
		c      uint16
		off, n uint32
		want   []byte
	}
	var hs []held
	for i := range 30000 {
		b := bytes.Repeat([]byte(fmt.Sprint(i%10)), 500+i%2000)
		c, off, ok := a.store(b)
		if !ok || c == 0 {
			t.Fatalf("blob %d of %d bytes not in the arena", i, len(b))
		}
		hs = append(hs, held{c, off, uint32(len(b)), b})
	}
	for c, ch := range a.list {
		if ch.buf != nil && cap(ch.buf)-len(ch.buf) < pack.WordRoom {
			t.Fatalf("chunk %d: %d bytes used of %d, no room left to read its last blob in place", c, len(ch.buf), cap(ch.buf))
		}
	}
	if _, _, ok := a.store(bytes.Repeat([]byte("x"), chunkMaxBlob+1)); ok {
		t.Fatalf("a blob over chunkMaxBlob went into the arena")
	}
	inUse := func() (chunks, bytes int) {
		for _, ch := range a.list {
			if ch.buf != nil {
				chunks++
				bytes += ch.live
			}
		}
		return
	}
	check := func(h held) {
		t.Helper()
		if got := a.readable(h.c, h.off, h.n); !bytes.Equal(got, h.want) || cap(got)-len(got) < pack.WordRoom {
			t.Fatalf("a blob reads back as %q (room %d), want %q", got, cap(got)-len(got), h.want)
		}
	}
	// Keep one blob in 50: every chunk is left sparse but alive.
	var kept []held
	for i, h := range hs {
		check(h)
		if i%50 == 0 {
			kept = append(kept, h)
			continue
		}
		a.release(h.c, h.n)
	}
	before, live := inUse()
	if before < 20 {
		t.Fatalf("only %d chunks in use before relocating", before)
	}
	for i := range kept {
		if a.sparse(kept[i].c) {
			kept[i].c, kept[i].off = a.relocate(kept[i].c, kept[i].off, kept[i].n)
		}
	}
	after, live2 := inUse()
	if live2 != live {
		t.Fatalf("relocating changed the bytes in use: %d, then %d", live, live2)
	}
	if bound := live*4/chunkSize + 2; after > bound {
		t.Fatalf("%d chunks hold %d bytes after relocating (want at most %d)", after, live, bound)
	}
	for _, h := range kept {
		check(h)
		a.release(h.c, h.n)
	}
	if n, b := inUse(); b != 0 || n > 1 {
		t.Fatalf("%d chunks, %d bytes in use after every blob was released (want the current one at most)", n, b)
	}
}

// TestArenaFreedWithOwner: the chunks of a table dropped before its end (never finished) are
// freed once the table is collected.
func TestArenaFreedWithOwner(t *testing.T) {
	owner := new([64]byte)
	a := newArena(owner)
	cs := a.chunks
	for range 1000 {
		a.store(bytes.Repeat([]byte("z"), 3000))
	}
	if len(cs.list) < 2 || cs.list[1].mem == nil && runtime.GOOS == "linux" {
		t.Fatalf("%d chunks after storing 3 MB", len(cs.list))
	}
	owner, a = nil, arena{}
	for range 200 {
		runtime.GC()
		if cs.freed.Load() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the chunks of an arena whose owner was collected were not freed")
}

// TestEntriesAt: entry numbers map to distinct entries across the growing chunks, the mapped
// ones included.
func TestEntriesAt(t *testing.T) {
	tb := &Table{}
	var x entries
	const n = entFirst<<(entMapped+1) + 5
	for i := range n {
		if ei := x.add(tb); ei != int32(i) {
			t.Fatalf("entry %d numbered %d", i, ei)
		}
		x.at(int32(i)).hashLo = uint32(i)
	}
	for i := range n {
		if got := x.at(int32(i)).hashLo; got != uint32(i) {
			t.Fatalf("entry %d reads back as %d", i, got)
		}
	}
	if len(x.chunks) != entMapped+2 || len(x.mem) != 2 {
		t.Fatalf("%d chunks, %d mapped, for %d entries", len(x.chunks), len(x.mem), n)
	}
}
