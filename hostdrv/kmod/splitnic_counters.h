/* SPDX-License-Identifier: GPL-2.0 */
/*
 * GENERATED FILE - DO NOT EDIT. Made by `make generate` from spec/splitnic_spec/tunnel.py.
 * splitnic kernel tunnel interface (splitnic.ko uapi), spec 0.3, hash 0x35423c9a.
 *
 * The NIC's counters as IOC_PUBLISH carries them: their ethtool -S names.
 * Kernel only (needs ETH_GSTRING_LEN).
 */
#ifndef SPLITNIC_COUNTERS_H
#define SPLITNIC_COUNTERS_H

#include <linux/ethtool.h>

static const char snic_tun_counter_names[][ETH_GSTRING_LEN] = {
	"rxq0_packets",
	"rxq0_bytes",
	"rxq0_drops",
	"rxq1_packets",
	"rxq1_bytes",
	"rxq1_drops",
	"rxq2_packets",
	"rxq2_bytes",
	"rxq2_drops",
	"rxq3_packets",
	"rxq3_bytes",
	"rxq3_drops",
	"txq0_packets",
	"txq0_bytes",
	"txq0_drops",
	"txq1_packets",
	"txq1_bytes",
	"txq1_drops",
	"steer0_hits",
	"steer1_hits",
	"steer2_hits",
	"steer3_hits",
	"steer4_hits",
	"steer5_hits",
	"steer6_hits",
	"steer7_hits",
	"steer8_hits",
	"steer9_hits",
	"steer10_hits",
	"steer11_hits",
	"steer12_hits",
	"steer13_hits",
	"steer14_hits",
	"steer15_hits",
	"rx_ok",
	"rx_ok_bytes",
	"rx_fcs_err",
	"rx_runt",
	"rx_oversize",
	"rx_filtered",
	"rx_fifo_drop",
	"tx_ok",
	"tx_ok_bytes",
	"dma_err",
};

#endif /* SPLITNIC_COUNTERS_H */
