// Package kernellab is tcpstate's ground-truth lab: it records what real Linux TCP sockets do
// and what the host's own `ss` says about them, and holds the tool against it.
//
// Topology (one set per scenario, namespaces named tsl<random>-c/-r/-s, removed afterwards):
//
//	client ns                router ns (forwarding)                server ns
//	c0 192.0.2.2/24   <-veth->  rc 192.0.2.1/24     rs 198.51.100.1/24  <-veth->  s0 198.51.100.2/24
//	   2001:db8:1::2/64            2001:db8:1::1/64    2001:db8:2::1/64              2001:db8:2::2/64
//
// tcpdump runs in the router on rc (the tap in the middle of the path: it sees client packets
// before the router's FORWARD chain, server packets after it). TSO, GSO, GRO, scatter-gather
// and TX checksum offload are turned off on all four veths (legacy ethtool ioctls, no ethtool
// binary needed), so captured frames are wire-sized with correct checksums. IPv6 duplicate
// address detection is off (nodad, accept_dad=0) and router solicitations are off.
//
// Sockets are plain non-blocking kernel TCP sockets created inside the end namespaces with
// setns(2) on a locked OS thread (see Netns.Do) and driven step by step by the scenario code
// in this process, so client and server actions interleave exactly; every socket stays open
// until the ss snapshot has been taken. Scenarios that need loss use iptables in the router;
// crossing-fins holds packets in the router with a small NFQUEUE client (netem is not built
// into every kernel).
//
// Recording (cmd/record, RecordAll): Play sets up and starts the capture, drives the traffic,
// then the recorder waits Settle, stops tcpdump with SIGINT, and immediately runs `ss -tan`
// and `ss -tano` in the client and server namespaces. Each scenario states the kernel states
// it intends; a recording whose ss snapshot or capture does not show them is an error.
//
// Harness: ParseSS/CanonicalState read ss output; ParseToolJSON reads `tcpstate -o json`;
// Compare holds one against the other endpoint by endpoint. TestKernelAgreement runs it on the
// committed recordings, TestKernelFresh on fresh ones (root only).
package kernellab
