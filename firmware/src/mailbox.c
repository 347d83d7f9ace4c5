/*
 * The host mailbox.
 *
 * Ref: spec/splitnic_spec/firmware.py: the host writes MBOX_ARG, then
 * MBOX_CMD with a SEQ other than MBOX_STATUS.SEQ; the firmware runs the op,
 * writes MBOX_DATA, then MBOX_STATUS with that SEQ.  Only the firmware writes
 * MBOX_STATUS, so "a new command" is simply CMD.SEQ != STATUS.SEQ.
 */
#include "mailbox.h"

#include "hw.h"
#include "mdio.h"
#include "phy.h"
#include "selftest.h"

static uint32_t run(uint32_t op, uint32_t arg, uint32_t *data)
{
	unsigned phy = FIELD_GET(MBOX_ARG, PHY, arg), reg = FIELD_GET(MBOX_ARG, REG, arg);
	int32_t v;

	switch (op) {
	case SNIC_MBOX_OP_VERSION:
		*data = FW_BUILD_ID;
		return SNIC_MBOX_OK;
	case SNIC_MBOX_OP_PHY_READ:
		v = mdio_read(phy, reg);
		if (v < 0)
			return SNIC_MBOX_ERR_NO_PHY;
		*data = (uint32_t)v;
		return SNIC_MBOX_OK;
	case SNIC_MBOX_OP_PHY_WRITE:
		if (mdio_read(phy, SNIC_MII_PHYSID1) < 0)
			return SNIC_MBOX_ERR_NO_PHY;
		mdio_write(phy, reg, FIELD_GET(MBOX_ARG, VALUE, arg));
		return SNIC_MBOX_OK;
	case SNIC_MBOX_OP_SELFTEST:
		*data = selftest();
		return *data ? SNIC_MBOX_ERR_FAILED : SNIC_MBOX_OK;
	default:
		return SNIC_MBOX_ERR_OP;
	}
}

void mailbox_poll(void)
{
	uint32_t cmd = nic_read(SNIC_REG_MBOX_CMD);
	uint32_t seq = FIELD_GET(MBOX_CMD, SEQ, cmd), data = 0, result;

	if (seq == FIELD_GET(MBOX_STATUS, SEQ, nic_read(SNIC_REG_MBOX_STATUS)))
		return;
	result = run(FIELD_GET(MBOX_CMD, OP, cmd), nic_read(SNIC_REG_MBOX_ARG), &data);
	nic_write(SNIC_REG_MBOX_DATA, data);
	nic_write(SNIC_REG_MBOX_STATUS, FIELD_PREP(MBOX_STATUS, SEQ, seq) | FIELD_PREP(MBOX_STATUS, RESULT, result));
}
