/* The firmware self-test (MBOX_OP_SELFTEST). Ref: spec/splitnic_spec/firmware.py, MBOX_SELFTEST_*. */
#ifndef SPLITNIC_FW_SELFTEST_H
#define SPLITNIC_FW_SELFTEST_H

#include <stdint.h>

/* Run every check; the MBOX_SELFTEST_* bits of the ones that failed (0: all passed). */
uint32_t selftest(void);

#endif
