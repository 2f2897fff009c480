package tracker

import "github.com/tcpstate/tcpstate/capture"

func runParallel(src capture.Source, rc RunConfig, out func(*Conn)) RunStats {
	rc.Workers = 1
	return Run(src, rc, out)
}
