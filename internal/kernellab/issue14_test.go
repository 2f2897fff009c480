package kernellab

// issue14Names are the scenarios recorded for issue 14 ("right where real networks lie").
var issue14Names = []string{
	"reject-reset-to-client", "reject-reset-to-server", "reject-reset-to-client-at-client",
	"conntrack-expired", "ips-reset", "forged-rst-to-client",
	"blackhole-retransmit", "blackhole-retransmit-at-client", "keepalive-blackhole",
	"long-path", "long-path-at-client", "reconnect-same-port", "fin-seen-late", "crossing-fins-held",
	"crossing-fins-first-lost", "zero-window-blackhole", "reject-reset-to-client-v6",
}

// issue14Pending lists the recordings (scenario, or scenario@N for an at-snapshot) on which
// tcpstate does not agree with the kernel yet, and why. Their agreement subtests are skipped
// visibly ("issue 14: ...") instead of failing; a listed one that agrees fails, so that the
// list only ever shrinks.
var issue14Pending = map[string]string{}
