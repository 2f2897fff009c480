package capture

import (
	"fmt"
	"path/filepath"
	"testing"
)

func TestScratchCounts(t *testing.T) {
	files, _ := filepath.Glob("../../shared/pcaps/public/*.pcap*")
	z, _ := filepath.Glob("../../shared/pcaps/zeek/*.pcap*")
	files = append(files, z...)
	for _, f := range files {
		src, err := OpenFiles([]string{f}, Config{})
		if err != nil {
			fmt.Printf("%s\tOPEN ERROR %v\n", f, err)
			continue
		}
		var seg Segment
		n := 0
		for src.Next(&seg) {
			n++
		}
		st := src.Stats()
		fmt.Printf("%s\t%d\t%+v\n", filepath.Base(f), n, st)
		for _, e := range src.Errs() {
			fmt.Printf("    ERR %v\n", e)
		}
		src.Close()
	}
}
