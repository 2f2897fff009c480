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
		s    string
		c    uint16
		want []byte
	}
	var hs []held
	for i := range 30000 {
		b := bytes.Repeat([]byte(fmt.Sprint(i%10)), 500+i%2000)
		s, c := a.store(b)
		if c == 0 {
			t.Fatalf("blob %d of %d bytes not in the arena", i, len(b))
		}
		hs = append(hs, held{s, c, b})
	}
	for c, ch := range a.list {
		if ch.buf != nil && cap(ch.buf)-len(ch.buf) < pack.WordRoom {
			t.Fatalf("chunk %d: %d bytes used of %d, no room left to read its last blob in place", c, len(ch.buf), cap(ch.buf))
		}
	}
	big := bytes.Repeat([]byte("x"), chunkMaxBlob+1)
	if s, c := a.store(big); c != 0 || s != string(big) {
		t.Fatalf("a blob over chunkMaxBlob went into chunk %d", c)
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
	// Keep one blob in 50: every chunk is left sparse but alive.
	var kept []held
	for i, h := range hs {
		if i%50 == 0 {
			kept = append(kept, h)
			continue
		}
		a.release(h.s, h.c)
	}
	before, live := inUse()
	if before < 20 {
		t.Fatalf("only %d chunks in use before relocating", before)
	}
	for i := range kept {
		if a.sparse(kept[i].c) {
			kept[i].s, kept[i].c = a.relocate(kept[i].s, kept[i].c)
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
		if h.s != string(h.want) {
			t.Fatalf("a blob changed: %q, want %q", h.s, h.want)
		}
	}
	for _, h := range kept {
		a.release(h.s, h.c)
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
	for i := 0; i < 200; i++ {
		runtime.GC()
		if cs.list[1].buf == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the chunks of an arena whose owner was collected were not freed")
}
