# Piñata. Every target sets up what it needs on a fresh Debian 12 machine: the hash-pinned venv from
# requirements-dev.lock, and system tools through apt-get when run as root (image/require-tools.sh).
# `make test` is what CI runs (.ci/run).

SHELL := /bin/bash
.DEFAULT_GOAL := help
SYSTEM_PYTHON := /usr/bin/python3.11
PY := .venv/bin/python
STAMP := .venv/.lock-sha256
REQUIRE := image/require-tools.sh

# System tools, as command:debian-package pairs.
BASE_TOOLS := /usr/bin/python3.11:python3.11 /usr/lib/python3.11/ensurepip/__init__.py:python3.11-venv
IMAGE_TOOLS := qemu-system-x86_64:qemu-system-x86 gcc:build-essential make:make flex:flex bison:bison bc:bc \
	/usr/include/libelf.h:libelf-dev lz4:lz4 xz:xz-utils apt-get:apt
TEST_TOOLS := $(IMAGE_TOOLS) openssl:openssl curl:curl ip:iproute2 dnsmasq:dnsmasq-base \
	virt-xml-validate:libvirt-clients xmllint:libxml2-utils cpio:cpio chromium:chromium
# The soak (not in `make test`): how long it runs (under TCG the appliance's memory is still warming up
# after 5 minutes, so the judged second half starts later than that), and the ledger region it provisions:
# the smallest that holds a largest checkpoint (64 KiB) with room for events, so a run rolls it over many
# times. Override: make soak SOAK_SECONDS=3600. SOAK_KILL_CYCLES=N kills the VM with SIGKILL (a power loss)
# N times in the first half of the run and boots it again on the same disk: each reboot must report a torn
# tail (never damage) and lose at most one ledger batch.
SOAK_SECONDS ?= 900
SOAK_LEDGER_KIB ?= 68
SOAK_KILL_CYCLES ?= 0
# Fuzzing (not in `make test`, which runs a short smoke pass of it): seconds per target, executions after
# which a target stops early (0: no such limit), how many targets at a time (0: one per core), and which
# targets (empty: all; naming some keeps the others' rows in the report). Override: make fuzz FUZZ_SECONDS=3600.
FUZZ_SECONDS ?= 300
FUZZ_RUNS ?= 0
FUZZ_JOBS ?= 0
FUZZ_TARGETS ?=

.PHONY: help venv test soak fuzz lint run run-host image bench lock manifest clean distclean

help:
	@echo "make run    - build what is missing and boot the image under QEMU (user networking)"
	@echo "make run-host - the appliance on this host's own sockets, ports shifted by 8000"
	@echo "make test   - everything CI runs: lint, manifest check, the test suite under branch coverage"
	@echo "              (a table per package; fails if a protocol core drops below its floor)"
	@echo "make soak   - mixed good and bad traffic against the booted image for SOAK_SECONDS (default 900);"
	@echo "              memory and ledger must stay bounded (report in build/soak/);"
	@echo "              SOAK_KILL_CYCLES=N adds N kill -9 + reboot cycles (loss per kill <= one batch)"
	@echo "make fuzz   - every fuzz target (atheris) for FUZZ_SECONDS each (default 300), one per core;"
	@echo "              coverage of each final corpus; report in build/fuzz/report.json"
	@echo "make image  - build the MicroVM image (kernel + initramfs), the libvirt domain's pci kernel, deploy files"
	@echo "make bench  - run every benchmark (python -m bench NAME runs one)"
	@echo "make lint   - ruff, mypy (strict) and the import contracts (.importlinter)"
	@echo "make lock   - re-resolve requirements*.in into the hash-pinned locks, then the manifest"
	@echo "make clean  - remove build outputs and caches in the checkout (distclean: the venv too)"

$(STAMP): requirements-dev.lock
	@$(REQUIRE) $(BASE_TOOLS)
	@$(SYSTEM_PYTHON) -m image.venv

venv: $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	.venv/bin/lint-imports

test: $(STAMP) lint
	@$(REQUIRE) $(TEST_TOOLS)
	$(PY) -m image.manifest --check
	$(PY) -m image.build
	$(PY) -m coverage erase
	HYPOTHESIS_PROFILE=ci $(PY) -m coverage run -m pytest
	$(PY) -m tests.coverage_report

soak: $(STAMP)
	@$(REQUIRE) $(TEST_TOOLS)
	$(PY) -m image.build
	$(PY) -m tests.integration.soak --seconds $(SOAK_SECONDS) --ledger-region-kib $(SOAK_LEDGER_KIB) \
		--kill-cycles $(SOAK_KILL_CYCLES)

fuzz: $(STAMP)
	$(PY) -m fuzz campaign --seconds $(FUZZ_SECONDS) --runs $(FUZZ_RUNS) --jobs $(FUZZ_JOBS) $(FUZZ_TARGETS)

run: $(STAMP)
	@$(REQUIRE) $(IMAGE_TOOLS)
	$(PY) -m image.run

run-host: $(STAMP)
	@mkdir -p build/host
	$(PY) -m appliance --net kernel --host 127.0.0.1 --port-offset 8000 --disk build/host/data.img

image: $(STAMP)
	@$(REQUIRE) $(IMAGE_TOOLS)
	$(PY) -m image.build --report --pci
	$(PY) -m image.deploy

bench: $(STAMP)
	@$(REQUIRE) $(TEST_TOOLS)
	$(PY) -m image.build
	$(PY) -m bench

lock: $(STAMP)
	$(PY) -m image.lock
	$(PY) -m image.manifest

manifest: $(STAMP)
	$(PY) -m image.manifest

clean:
	rm -rf build bench/results .mypy_cache .ruff_cache .pytest_cache .hypothesis .grimp_cache
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf .venv
