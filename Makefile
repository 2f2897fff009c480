# tcpstate — two commands for a newcomer: `make run` and `make test`.
# Every install step lives here: on a fresh Debian machine (root) missing packages come from apt.

GO        ?= go
BIN       := bin/tcpstate
DEMO      := testdata/pcaps/kernel/mixed-40/capture.pcap
APT_PKGS  := libpcap-dev
LAB_PKGS  := tcpdump iptables iproute2 prometheus
PEER_PKGS := tcptrace tshark tcpdump time tcpreplay iproute2
BROWSER_PKGS := chromium

.PHONY: all run build test deps lab-deps peer-deps browser-deps testdata bench fuzz pgo clean

all: build

# deps: libpcap headers (cgo, used to compile tcpdump filter expressions).
deps:
	@./scripts/ensure-packages.sh $(APT_PKGS)

# lab-deps: what the kernel recorder and the namespace tests need (root only; skipped otherwise);
# prometheus: the metrics test runs a real Prometheus (and promtool) against live capture.
lab-deps:
	@./scripts/ensure-packages.sh --optional $(LAB_PKGS)

peer-deps:
	@./scripts/ensure-packages.sh --optional $(PEER_PKGS)

# browser-deps: headless Chromium for the HTML report's end-to-end tests (root only; they skip otherwise).
browser-deps:
	@./scripts/ensure-packages.sh --optional $(BROWSER_PKGS)

build: deps
	$(GO) build -o $(BIN) ./cmd/tcpstate

# run: build, then analyse a bundled kernel recording so you see the tool work.
run: build
	./$(BIN) -r $(DEMO) -o table

# test: the whole suite. Tests needing root/network namespaces skip with a reason elsewhere.
test: deps lab-deps browser-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

# testdata: re-record the kernel ground truth (root: network namespaces, tcpdump, ss).
testdata: build lab-deps
	$(GO) run ./internal/kernellab/cmd/record -out testdata/pcaps/kernel

bench: build peer-deps
	GO=$(GO) ./scripts/bench.sh

fuzz:
	./scripts/fuzz.sh 60s

# pgo: regenerate cmd/tcpstate/default.pgo, the profile go build optimises bin/tcpstate with.
pgo:
	GO=$(GO) ./scripts/pgo.sh

clean:
	rm -rf bin
