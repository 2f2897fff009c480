package tracker

import "testing"

// The kernel recording reconnect-same-port (internal/kernellab) is the real test; these pin
// the two answers a server can give to a SYN from a client that lost its socket.
func TestReconnectChallengeACK(t *testing.T) {
	tr := play(t, with(
		pkt{true, 30 * ms, A | P, 101, 501, 10},
		pkt{false, 31 * ms, A, 501, 111, 0},
		pkt{true, 1000 * ms, S, 9000, 0, 0},   // the client is back: new ISN, same port
		pkt{false, 1001 * ms, A, 501, 111, 0}, // challenge ACK from the old connection
		pkt{true, 1002 * ms, R, 111, 0, 0},    // the client's new socket resets the old one
		pkt{true, 2000 * ms, S, 9000, 0, 0},   // its SYN again
		pkt{false, 2001 * ms, S | A, 7000, 9001, 0},
		pkt{true, 2002 * ms, A, 9001, 7001, 0},
	))
	if n := len(tr.Conns()); n != 2 {
		t.Fatalf("%d connections, want the old and the new", n)
	}
	want(t, tr, 1, Closed, Closed)
	want(t, tr, 2, Established, Established)
}

func TestReconnectAcceptedBySynAck(t *testing.T) {
	// The server answers the new SYN with a SYN-ACK: it had no synchronized socket after all.
	tr := play(t, with(
		pkt{true, 30 * ms, A | P, 101, 501, 10},
		pkt{false, 31 * ms, A, 501, 111, 0},
		pkt{true, 1000 * ms, S, 9000, 0, 0},
		pkt{false, 1001 * ms, S | A, 7000, 9001, 0},
		pkt{true, 1002 * ms, A, 9001, 7001, 0},
	))
	if n := len(tr.Conns()); n != 2 {
		t.Fatalf("%d connections, want the old and the new", n)
	}
	c := tr.Conns()[1]
	if c.Client.State != Established || c.Server.State != Established {
		t.Errorf("new connection: %v/%v, want ESTABLISHED both", c.Client.State, c.Server.State)
	}
	if old := tr.Conns()[0]; old.Client.State != Closed {
		t.Errorf("old connection's client: %v, want CLOSED (it sent a new SYN from the port)", old.Client.State)
	}
}
