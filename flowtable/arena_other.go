//go:build !linux

package flowtable

// mapMemory is memory from the Go heap (arena_linux.go maps its own).
func mapMemory(size int) (buf, mem []byte) { return make([]byte, size), nil }

func freeMemory(mem []byte) {}
