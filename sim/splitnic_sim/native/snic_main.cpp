// main() of the native harness's simulator: cocotb's Verilator main with a bounded trace.
//
// Ref: docs/simulation.md ("Waveforms"); cocotb's share/lib/verilator/verilator.cpp
// (cocotb 2.1.0), from which everything but the trace window is taken unchanged.
// Copyright cocotb contributors; licensed under the Revised BSD License (SPDX-License-Identifier:
// BSD-3-Clause).  Changes for splitnic: the trace window below.
//
// A build with --trace-fst can record the design while `splitnic sim` serves a driver for
// minutes or hours: --trace-from T and --trace-until T (simulation time, in the design's time
// precision) keep the file to a window.  The file is opened at the first time step at or past
// T_from and closed, complete, at the first one at or past T_until, so a long run cannot fill
// the disk and a killed simulator leaves a readable file once its window has passed.  Without
// --trace the build is the same as cocotb's (no tracing is compiled in without --trace-fst).
#include <libgen.h>  // basename
#include <stdio.h>   // stderr, fprintf
#include <stdlib.h>  // strtoull

#include <memory>  // std::unique_ptr
#include <string>  // std::string

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#ifndef VM_TRACE_FST
#define VM_TRACE_FST 0
#endif

#if VM_TRACE
#if VM_TRACE_FST
#include <verilated_fst_c.h>
using verilated_trace_t = VerilatedFstC;
#else
#include <verilated_vcd_c.h>
using verilated_trace_t = VerilatedVcdC;
#endif
static verilated_trace_t *tfp;
static std::unique_ptr<Vtop> *top_for_trace;
static const char *trace_file;
static vluint64_t trace_from = 0, trace_until = ~0ULL;
static bool trace_on = false, trace_done = false;
#endif

static vluint64_t main_time = 0;  // Current simulation time
#if VM_COVERAGE
static bool coverage_per_instance = false;
#endif

double sc_time_stamp() {  // Called by $time in Verilog
    return main_time;
}

extern "C" {
void vlog_startup_routines_bootstrap(void);
}

static inline bool settle_value_callbacks() {
    bool cbs_called, again;
    cbs_called = again = VerilatedVpi::callValueCbs();
    while (again) {
        again = VerilatedVpi::callValueCbs();
    }
    return cbs_called;
}

#if VM_TRACE
static void trace_close(const char *why) {
    if (!tfp) return;
    tfp->close();
    fprintf(stderr, "snic_main: trace %s closed at time %llu (%s)\n", trace_file,
            (unsigned long long)main_time, why);
    trace_done = true;
}

// Called after every time step's evaluation: open, dump, close as the window says.
static void trace_step() {
    if (!trace_on || trace_done) return;
    if (main_time >= trace_until) {
        trace_close("end of the window");
        return;
    }
    if (main_time < trace_from) return;
    if (!tfp) {
        // The first dump after open() is a full one: the file starts with every signal's value.
        tfp = new verilated_trace_t;
        (*top_for_trace)->trace(tfp, 99);
        tfp->open(trace_file);
        fprintf(stderr, "snic_main: tracing to %s from time %llu\n", trace_file, (unsigned long long)main_time);
    }
    tfp->dump(main_time);
}
#endif

void wrap_up() {
    VerilatedVpi::callCbs(cbEndOfSimulation);

#if VM_TRACE
    if (tfp && !trace_done) {
        // We don't delete the trace object to avoid deadlock in verilator sims.
        trace_close("end of the simulation");
    }
#endif

#if VM_COVERAGE
    if (coverage_per_instance) {
        Verilated::threadContextp()->coveragep()->forcePerInstance(true);
    }
    VerilatedCov::write();  // +verilator+coverage+file+<filename>, default coverage.dat
#endif
}

static bool time_arg(int argc, char **argv, int *i, vluint64_t *out) {
    if (++*i >= argc) {
        fprintf(stderr, "Error: %s requires a time\n", argv[*i - 1]);
        return false;
    }
    char *end;
    *out = strtoull(argv[*i], &end, 0);
    if (*end) {
        fprintf(stderr, "Error: %s: not a whole number: %s\n", argv[*i - 1], argv[*i]);
        return false;
    }
    return true;
}

int main(int argc, char **argv) {
#if VM_TRACE_FST
    const char *traceFile = "dump.fst";
#else
    const char *traceFile = "dump.vcd";
#endif
    bool traceOn = false;
    bool coveragePerInstance = false;
    vluint64_t from = 0, until = ~0ULL;

    for (int i = 1; i < argc; i++) {
        std::string arg = std::string(argv[i]);
        if (arg == "--coverage-per-instance") {
#if VM_COVERAGE
            coveragePerInstance = true;
#else
            fprintf(stderr, "Error: --coverage-per-instance requires the design to be built with coverage support\n");
            return -1;
#endif
        } else if (arg == "--trace") {
#if VM_TRACE
            traceOn = true;
#else
            fprintf(stderr, "Error: --trace requires the design to be built with trace support\n");
            return -1;
#endif
        } else if (arg == "--trace-file") {
            if (++i < argc) {
                traceFile = argv[i];
            } else {
                fprintf(stderr, "Error: --trace-file requires a parameter\n");
                return -1;
            }
        } else if (arg == "--trace-from") {
            if (!time_arg(argc, argv, &i, &from)) return -1;
        } else if (arg == "--trace-until") {
            if (!time_arg(argc, argv, &i, &until)) return -1;
        }
    }

    Verilated::commandArgs(argc, argv);
#if VM_COVERAGE
    coverage_per_instance = coveragePerInstance;
#endif
#if VM_TRACE
    Verilated::traceEverOn(true);
#endif
    std::unique_ptr<Vtop> top(new Vtop(""));
    Verilated::fatalOnVpiError(false);  // otherwise it will fail on systemtf

#if VM_TRACE
    top_for_trace = &top;
    trace_on = traceOn;
    trace_file = traceFile;
    trace_from = from;
    trace_until = until;
#else
    (void)traceOn;
    (void)traceFile;
    (void)from;
    (void)until;
#endif

    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void *) { wrap_up(); }, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle_value_callbacks();

    while (!Verilated::gotFinish()) {
        do {
            do {
                top->eval_step();
                VerilatedVpi::clearEvalNeeded();
                VerilatedVpi::doInertialPuts();
                settle_value_callbacks();
            } while (VerilatedVpi::evalNeeded());
            VerilatedVpi::callCbs(cbReadWriteSynch);
            VerilatedVpi::doInertialPuts();
            settle_value_callbacks();
        } while (VerilatedVpi::evalNeeded());

        top->eval_end_step();

        VerilatedVpi::callCbs(cbReadOnlySynch);

#if VM_TRACE
        trace_step();
#endif
        const vluint64_t NO_TOP_EVENTS_PENDING = static_cast<vluint64_t>(~0ULL);
        vluint64_t next_time_cocotb = VerilatedVpi::cbNextDeadline();
        vluint64_t next_time_timing = top->eventsPending() ? top->nextTimeSlot() : NO_TOP_EVENTS_PENDING;
        vluint64_t next_time = std::min(next_time_cocotb, next_time_timing);
        if (next_time == NO_TOP_EVENTS_PENDING) {
            break;
        } else {
            main_time = next_time;
        }

        VerilatedVpi::callCbs(cbNextSimTime);
        settle_value_callbacks();
        VerilatedVpi::callTimedCbs();
        settle_value_callbacks();
    }

    top->final();

    wrap_up();

#if VM_TRACE
    if (tfp) {
        delete tfp;
        tfp = nullptr;
    }
#endif

    if (Verilated::threadContextp()->errorCount() > 0) {
        return 1;
    }
    return 0;
}
