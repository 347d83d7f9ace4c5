/*
 * The host mailbox: MBOX_CMD/ARG in, MBOX_STATUS/DATA out.
 *
 * Ref: spec/splitnic_spec/firmware.py (the protocol), docs/registers.md.
 */
#ifndef SPLITNIC_FW_MAILBOX_H
#define SPLITNIC_FW_MAILBOX_H

/* Run the host's command if it posted a new one. */
void mailbox_poll(void);

#endif
