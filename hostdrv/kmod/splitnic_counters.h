/* SPDX-License-Identifier: GPL-2.0 */
/*
 * GENERATED FILE - DO NOT EDIT. Made by `make generate` from spec/splitnic_spec/tunnel.py.
 * splitnic kernel tunnel interface (splitnic.ko uapi), spec 0.2, hash 0x9e8faeb4.
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

static inline void snic_tun_stats64_from_counters(struct rtnl_link_stats64 *s, const u64 *c)
{
	s->rx_packets = c[0] + c[3] + c[6] + c[9];
	s->rx_bytes = c[1] + c[4] + c[7] + c[10];
	s->rx_errors = c[36] + c[37] + c[38];
	s->rx_dropped = c[2] + c[5] + c[8] + c[11] + c[40];
	s->rx_crc_errors = c[36];
	s->rx_length_errors = c[37] + c[38];
	s->rx_fifo_errors = c[40];
	s->tx_packets = c[41];
	s->tx_bytes = c[42];
	s->tx_dropped = c[14] + c[17];
}

#endif /* SPLITNIC_COUNTERS_H */
