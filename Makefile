# The project's commands. `make test` and `make demo` are each the one command a fresh
# clone needs: both install what is missing first.
CARGO ?= cargo
export XVS_BIN := $(CURDIR)/target/release/xvs

.PHONY: setup build test lint unit e2e demo bench fuzz soak deb clean

setup:
	@scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# Unit, property and BPF fixture tests; then the namespace labs, one at a time (each
# builds its own namespaces and processes, and two at once would share two CPUs).
unit: build
	$(CARGO) test --release --workspace --exclude xvs-lab

e2e: build
	$(CARGO) test --release -p xvs-lab -- --test-threads=1

test: setup lint unit e2e

demo: build
	./target/release/xvs-lab demo

# Criterion (the per-packet cost of the pipeline), then the side-by-side packet rates of
# every path through a director (xvs-pps), which writes bench/RESULTS.md.
bench: build
	$(CARGO) bench -p xvs-bench
	./target/release/xvs-pps run --out bench/RESULTS.md
	./target/release/xvs-pps run --size 1514 --flows 1 --reps 3 --paths fwd,xvs-dr,xvs-nat,xvs-fnat,ipfwd,nft --out bench/RESULTS-data-rate.md
	./target/release/xvs-pps takeover --out bench/RESULTS.md

# Every fuzz target for FUZZ_SECS seconds (default 60) from the checked-in seed corpora;
# prints executions and findings, fails on any. Not part of `make test`.
fuzz: setup
	@scripts/fuzz.sh

# Half an hour (SOAK_SECS) of traffic, reloads, a flapping real server and VRRP peer:
# memory, descriptors and threads flat, no error logged. Not part of `make test`.
soak: build
	$(CARGO) test --release -p xvs-lab --test soak -- --ignored --nocapture

# The Debian package (target/deb/xvs_<version>_<arch>.deb): binary, unit, conffile, man
# pages, completions, dashboard. Install it with `dpkg -i` (or `apt install ./FILE`).
deb: build
	@scripts/deb.sh

clean:
	$(CARGO) clean
