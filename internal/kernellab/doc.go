// Package kernellab is tcpstate's ground-truth lab: it records what real Linux TCP sockets do
// and what the host's own `ss` says about them, and holds the tool against it.
//
// Topology (one set per scenario, namespaces named tsl<random>-c/-r/-s, removed afterwards):
//
//	client ns                router ns (forwarding)                server ns
//	c0 192.0.2.2/24   <-veth->  rc 192.0.2.1/24     rs 198.51.100.1/24  <-veth->  s0 198.51.100.2/24
//	   2001:db8:1::2/64            2001:db8:1::1/64    2001:db8:2::1/64              2001:db8:2::2/64
//
// The tap (Scenario.Tap) is by default tcpdump in the router on rc, a tap in the middle of the
// path: it sees client packets before the router's FORWARD chain, server packets after it.
// Other taps: the router's rs (forged-rst), the client's c0 or the server's s0 (tcpdump on
// an endpoint itself: -at-client/-at-server scenarios, `record -tap`), and "span": rc and
// rs captured separately and merged, so every forwarded packet is in the capture twice. TSO,
// GSO, GRO, scatter-gather and TX checksum offload are turned off on all four veths (legacy
// ethtool ioctls, no ethtool binary needed), so captured frames are wire-sized with correct
// checksums. IPv6 duplicate address detection is off (nodad, accept_dad=0) and router
// solicitations are off.
//
// Sockets are plain non-blocking kernel TCP sockets created inside the end namespaces with
// setns(2) on a locked OS thread (see Netns.Do) and driven step by step by the scenario code
// in this process, so client and server actions interleave exactly; every socket stays open
// until the ss snapshot has been taken. Losses "after the tap" are iptables DROP rules placed
// where the tap has already seen the packet: the router's FORWARD chain for client packets,
// the INPUT chain of the receiving end namespace for either direction. crossing-fins and
// simultaneous-open hold packets in the router with a small NFQUEUE client (netem is not built
// into every kernel); forged-rst injects RSTs through a raw socket in the router. A DelayLine
// (NFQUEUE again) delays the packets it matches by a fixed time: long-path puts 500 ms between
// the tap and the server, fin-seen-late and crossing-fins-held hold only FINs. The issue 14
// scenarios (scenarios_issue14_linux.go) make the router a middlebox: REJECT with tcp-reset,
// a conntrack firewall whose entries expire, an IPS injecting RSTs, blackholes. Losses
// "before the tap" (packets delivered but missing from the capture) and exact SPAN duplicates
// are made by editing the recorded capture (Scenario.Edit); the ss truth is unchanged.
//
// Recording (cmd/record, RecordAll): Play sets up and starts the capture, drives the traffic,
// then the recorder waits Settle, stops tcpdump with SIGINT, and immediately runs `ss -tan`
// and `ss -tano` in the client and server namespaces. Each scenario states the kernel states
// it intends; a recording whose ss snapshot or capture does not show them is an error.
// Scenarios may also take at-snapshots during the play (Run.Snapshot): once nothing is in
// flight (no packet on the tap for 250 ms, no retransmission or probe timer armed), `ss -tan`
// in both ends, saved as ss-client@N.txt / ss-server@N.txt with the instant in scenario.json:
// the truth for `tcpstate --at`. Slow scenarios (kernel timers running out) set FinalAt: they
// are compared at the snapshot instant with --at.
//
// Harness: ParseSS/CanonicalState read ss output; ParseToolJSON reads `tcpstate -o json`;
// Compare holds one against the other endpoint by endpoint. TestKernelAgreement runs it on the
// committed recordings, TestKernelAt on their at-snapshots, TestKernelDuplicates checks that
// SPAN duplicates are counted once, and TestKernelFresh does all three on fresh recordings
// (root only; the slow scenarios only with TCPSTATE_KERNEL_SLOW=1).
//
// Other stacks (netstack_linux.go, lwip_linux.go, netstack_record_linux.go): the same
// topology with gVisor's netstack (internal/netstackhost, its own Go module, on an AF_PACKET
// socket of the end's veth) or lwIP (internal/lwiphost, C on liblwip, on a TAP device bridged
// with the veth) in place of the kernel's TCP on the client, the server or both; the kernel's
// addresses leave that veth first. Scenarios drive either stack through Host/Endpoint; each
// host lists its own endpoints at the truth instant in `ss -tan` form. cmd/recordnetstack
// records them into testdata/pcaps/netstack (scenario.json "stacks" says which ran where);
// TestNetstackAgreement, TestNetstackFresh and TestPerEndpointProfiles hold the tool to them.
package kernellab
