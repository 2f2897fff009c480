package kernellab

// issue14Names are the scenarios recorded for issue 14 ("right where real networks lie").
var issue14Names = []string{
	"reject-reset-to-client", "reject-reset-to-server", "reject-reset-to-client-at-client",
	"conntrack-expired", "ips-reset", "forged-rst-to-client",
	"blackhole-retransmit", "blackhole-retransmit-at-client", "keepalive-blackhole",
	"long-path", "long-path-at-client", "reconnect-same-port", "fin-seen-late", "crossing-fins-held",
}

// issue14Pending lists the recordings (scenario, or scenario@N for an at-snapshot) on which
// tcpstate does not agree with the kernel yet, and why. Their agreement subtests are skipped
// visibly ("issue 14: ...") instead of failing; a listed one that agrees fails, so that the
// list only ever shrinks.
var issue14Pending = map[string]string{
	"reject-reset-to-client":           "RST forged by the router in the server's name is taken as the server's own: the server is reported CLOSED, it is ESTABLISHED (half-open)",
	"reject-reset-to-client-at-client": "RST forged by the router in the server's name is taken as the server's own: the server is reported CLOSED, it is ESTABLISHED (half-open)",
	"reject-reset-to-server":           "RST forged by the router in the client's name is taken as the client's own: the client is reported CLOSED, it is ESTABLISHED (half-open)",
	"forged-rst-to-client":             "exact RST injected in the server's name is taken as the server's own: the server is reported CLOSED",
	"forged-rst-to-client@4":           "exact RST injected in the server's name is taken as the server's own: the server is reported CLOSED",
	"blackhole-retransmit":             "the client's retransmissions stopped because its kernel gave up (tcp_retries2): reported ESTABLISHED, it is CLOSED",
	"blackhole-retransmit@1":           "the client's retransmissions stopped because its kernel gave up (tcp_retries2): reported ESTABLISHED, it is CLOSED",
	"blackhole-retransmit-at-client":   "the client's retransmissions stopped because its kernel gave up (tcp_retries2): reported ESTABLISHED, it is CLOSED",
	"blackhole-retransmit-at-client@1": "the client's retransmissions stopped because its kernel gave up (tcp_retries2): reported ESTABLISHED, it is CLOSED",
	"conntrack-expired":                "the client's retransmissions (dropped by the firewall) stopped because its kernel gave up: reported ESTABLISHED, it is CLOSED",
	"conntrack-expired@1":              "the client's retransmissions (dropped by the firewall) stopped because its kernel gave up: reported ESTABLISHED, it is CLOSED",
	"keepalive-blackhole":              "the RST the client sends when its keepalive gives up is taken as delivered, though the path had stopped answering: server reported CLOSED, it is ESTABLISHED",
	"keepalive-blackhole@1":            "the RST the client sends when its keepalive gives up is taken as delivered, though the path had stopped answering: server reported CLOSED, it is ESTABLISHED",
	"long-path":                        "the client's RST, seen at the tap 100 ms before the end, is 500 ms from the server: taken as arrived (server CLOSED), it is still FIN_WAIT_2",
	"long-path-at-client":              "the client's RST, seen at the tap 100 ms before the end, is 500 ms from the server: taken as arrived (server CLOSED), it is still FIN_WAIT_2",
	"long-path@1":                      "the client's ACK of the FIN is still on the 500 ms path at --at: taken as arrived (server FIN_WAIT_2), it is FIN_WAIT_1",
	"long-path-at-client@1":            "the client's ACK of the FIN is still on the 500 ms path at --at: taken as arrived (server FIN_WAIT_2), it is FIN_WAIT_1",
	"reconnect-same-port":              "the client's RST answering the challenge ACK is put on the new connection (server reported CLOSED) instead of ending the old one",
}
