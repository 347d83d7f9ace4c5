/* SPDX-License-Identifier: GPL-2.0 */
/*
 * GENERATED FILE - DO NOT EDIT. Made by `make generate` from spec/splitnic_spec/tunnel.py.
 * splitnic kernel tunnel interface (splitnic.ko uapi), spec 0.2, hash 0x8e4b29c6.
 *
 * The NIC's counters as IOC_PUBLISH carries them: their ethtool -S names, and
 * ip -s link's figures as sums of them.  Kernel only (needs ETH_GSTRING_LEN).
 */
#ifndef SPLITNIC_COUNTERS_H
#define SPLITNIC_COUNTERS_H

#include <linux/ethtool.h>
#include <linux/if_link.h>

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
	"rxq4_packets",
	"rxq4_bytes",
	"rxq4_drops",
	"rxq5_packets",
	"rxq5_bytes",
	"rxq5_drops",
	"rxq6_packets",
	"rxq6_bytes",
	"rxq6_drops",
	"rxq7_packets",
	"rxq7_bytes",
	"rxq7_drops",
	"txq0_packets",
	"txq0_bytes",
	"txq0_drops",
	"txq1_packets",
	"txq1_bytes",
	"txq1_drops",
	"txq2_packets",
	"txq2_bytes",
	"txq2_drops",
	"txq3_packets",
	"txq3_bytes",
	"txq3_drops",
	"txq4_packets",
	"txq4_bytes",
	"txq4_drops",
	"txq5_packets",
	"txq5_bytes",
	"txq5_drops",
	"txq6_packets",
	"txq6_bytes",
	"txq6_drops",
	"txq7_packets",
	"txq7_bytes",
	"txq7_drops",
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
};

static inline void snic_tun_stats64_from_counters(struct rtnl_link_stats64 *s, const u64 *c)
{
	s->rx_packets = c[0] + c[3] + c[6] + c[9] + c[12] + c[15] + c[18] + c[21];
	s->rx_bytes = c[1] + c[4] + c[7] + c[10] + c[13] + c[16] + c[19] + c[22];
	s->rx_errors = c[66] + c[67] + c[68];
	s->rx_dropped = c[2] + c[5] + c[8] + c[11] + c[14] + c[17] + c[20] + c[23] +
		c[70];
	s->rx_crc_errors = c[66];
	s->rx_length_errors = c[67] + c[68];
	s->rx_fifo_errors = c[70];
	s->tx_packets = c[71];
	s->tx_bytes = c[72];
	s->tx_dropped = c[26] + c[29] + c[32] + c[35] + c[38] + c[41] + c[44] + c[47];
}

#endif /* SPLITNIC_COUNTERS_H */
