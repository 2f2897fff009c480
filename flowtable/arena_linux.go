package flowtable

import (
	"syscall"
	"unsafe"
)

// mapMemory maps size bytes of anonymous memory (zeroed), aligned on a huge page and advised
// to be backed by huge pages (MADV_HUGEPAGE: honoured when transparent huge pages are
// "always" or "madvise", the Debian default). It returns the memory and the mapping to free
// (freeMemory); it falls back to the Go heap (mem nil) if mapping fails.
func mapMemory(size int) (buf, mem []byte) {
	m, err := syscall.Mmap(-1, 0, size+hugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return make([]byte, size), nil
	}
	off := (hugePage - int(uintptr(unsafe.Pointer(unsafe.SliceData(m)))%hugePage)) % hugePage
	buf = m[off : off+size : off+size]
	_ = syscall.Madvise(buf, 14) // MADV_HUGEPAGE (not in package syscall); advice only
	mappedBytes.Add(int64(size))
	return buf, m
}

// freeMemory unmaps what mapMemory mapped (the part beyond the aligned memory was never
// touched).
func freeMemory(mem []byte) {
	mappedBytes.Add(-int64(len(mem) - hugePage))
	_ = syscall.Munmap(mem)
}
