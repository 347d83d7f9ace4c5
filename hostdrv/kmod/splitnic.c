// SPDX-License-Identifier: GPL-2.0
/*
 * splitnic.ko - the kernel half of splitnic's split network driver.
 *
 * Ref: spec/splitnic_spec/tunnel.py, the kernel/user interface spec
 * (generated: splitnic_tunnel.h and docs/registers.md).
 *
 * The module registers the misc device /dev/splitnic.  A user-space driver
 * opens it, creates (or re-attaches by name) an ordinary Ethernet interface,
 * sets up a shared area with two rings and mmaps it:
 *
 *	insmod splitnic.ko
 *	splitnic up --link sim --kernel stub --name snic0
 *
 * k2u carries the frames the kernel transmits on the interface to the
 * driver; u2k carries the frames the driver delivers, which NAPI feeds to the
 * stack.  Everything user space writes into the area or passes to an ioctl
 * is checked before use: a buggy or hostile driver gets an error, never a
 * crash.  When the handle is released the interface goes carrier-down and
 * the rings are freed; the interface stays so that a new driver process can
 * attach it again.  `ip link del`, the deletion of the interface's network
 * namespace and rmmod remove interfaces (rtnl_link_ops: an interface never
 * moves to another namespace when its own dies).
 *
 * Toward user space the module also reports the interface's configuration
 * (MAC, MTU, flags, address lists: POLLPRI and IOC_GET_CONFIG), and it shows
 * the NIC's counters, link and firmware that user space publishes
 * (IOC_PUBLISH) in ethtool; ip -s link counts the interface's own frames.
 * ethtool -N/-n are a second front end to the NIC's steering table, which
 * the driver owns: it publishes the table (IOC_PUBLISH_RULES) and takes what
 * ethtool -N asked (IOC_TAKE_RULE_REQ, announced with POLLPRI).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/etherdevice.h>
#include <linux/ethtool.h>
#include <linux/fs.h>
#include <linux/log2.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/netdevice.h>
#include <linux/nsproxy.h>
#include <linux/poll.h>
#include <linux/rtnetlink.h>
#include <linux/slab.h>
#include <linux/u64_stats_sync.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vmalloc.h>
#include <net/net_namespace.h>
#include <net/rtnetlink.h>
/* 6.12 moved the unaligned access helpers out of asm/. */
#if KERNEL_VERSION(6, 12, 0) <= LINUX_VERSION_CODE
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

#include "splitnic_spec.h"
#include "splitnic_tunnel.h"
#include "splitnic_counters.h"

#ifdef __BIG_ENDIAN
#error "the splitnic shared area is little-endian; big-endian hosts are not supported"
#endif

/* One ring set: the shared area and the module's own view of it. */
struct snic_rings {
	void *area;			/* vmalloc, memcg charged, mmapped by user space */
	size_t area_size;
	u32 slot_size;
	u32 k2u_mask;			/* entries - 1 */
	u32 u2k_mask;
	struct snic_tun_desc *k2u_desc;
	struct snic_tun_desc *u2k_desc;
	u8 *k2u_data;
	u8 *u2k_data;
	u32 *k2u_prod;			/* copy of k2u_head for user space */
	u32 *k2u_cons;			/* written by user space: never trusted */
	u32 *u2k_prod;			/* written by user space: never trusted */
	u32 *u2k_cons;			/* copy of u2k_tail for user space */
	u32 k2u_head;			/* the module's k2u producer index */
	u32 u2k_tail;			/* the module's u2k consumer index */
	wait_queue_head_t *wq;		/* the handle's poll() waiters */
};

struct snic_stats {
	u64 packets;
	u64 bytes;
	u64 dropped;
	u64 errors;
	u64 length_errors;
	struct u64_stats_sync syncp;
};

/* What user space published with IOC_PUBLISH (the NIC as it sees it). */
struct snic_published {
	bool counters_valid;		/* @counters were published */
	u64 counters[SNIC_TUN_COUNTERS];	/* snic_tun_counter_names order */
	u32 speed;			/* Mb/s, 0: not known */
	u8 duplex;			/* DUPLEX_* */
	u32 rx_usecs;			/* the NIC's moderation, or RX_USECS_NONE */
	u32 rx_ring, tx_ring, ring_max;	/* the NIC's queue 0 rings, 0: not known */
	u32 rx_queues, tx_queues;	/* the NIC's queues, 0: not known */
	char fw_version[SNIC_TUN_TEXT_LEN];
	char bus_info[SNIC_TUN_TEXT_LEN];
};

/*
 * The NIC's steering table for ethtool -n/-N: the driver owns it (both
 * front ends, `splitnic rules` and ethtool, change it there), publishes it
 * after every change (IOC_PUBLISH_RULES) and takes what ethtool -N asked
 * (IOC_TAKE_RULE_REQ).  @view is the published table with the requests
 * the driver has not handled yet applied, so ethtool -n shows at once what
 * an ethtool -N did.  Under @steer_lock.
 */
struct snic_steer {
	u32 capacity;			/* 0: no table published (no ethtool -N/-n) */
	u32 rx_queues;
	u32 count;			/* entries of @view */
	struct snic_tun_rule view[SNIC_TUN_RULES_MAX];
	u32 next_seq;			/* RuleReq.seq of the next request */
	u32 taken;			/* seq of the last request the driver took */
	u32 nreqs;			/* requests not handled yet, oldest first */
	struct snic_tun_rule_req reqs[SNIC_TUN_RULE_REQS_MAX];
};

/* netdev_priv() of a splitnic interface. */
struct snic_priv {
	struct net_device *ndev;
	struct napi_struct napi;
	struct snic_file *owner;	/* attached handle, under RTNL */
	wait_queue_head_t *owner_wq;	/* its poll() waiters, under tx_lock */
	/*
	 * tx_lock is taken with IRQs off: netpoll (netconsole) transmits from
	 * any context, a hard IRQ included, and would spin for ever on a lock
	 * its own CPU holds with only BHs off.  rx_lock needs only BHs off:
	 * netpoll polls NAPI with a budget of 0, which takes no lock.
	 */
	spinlock_t tx_lock;		/* xmit's use of @rings and @tx, @owner_wq */
	spinlock_t rx_lock;		/* NAPI's use of @rings */
	struct snic_rings *rings;	/* changed under both locks */
	struct snic_stats tx;		/* under tx_lock */
	struct timer_list tx_timer;	/* restarts a queue stopped for room */
	struct snic_stats rx;		/* NAPI context only */
	atomic64_t rx_dropped_down;	/* u2k frames dropped while down */
	atomic_t cfg_gen;		/* bumped by every configuration change */
	u32 rx_usecs_wanted;		/* ethtool -C, under RTNL; RX_USECS_NONE */
	spinlock_t pub_lock;		/* @pub */
	struct snic_published pub;
	spinlock_t steer_lock;		/* @steer: process context only */
	struct snic_steer steer;
};

/* private_data of an open /dev/splitnic. */
struct snic_file {
	struct mutex lock;		/* serialises ioctls */
	/* Attached interface: changed under RTNL; KICK and poll() read it under RCU. */
	struct snic_priv __rcu *priv;
	struct snic_rings *rings;	/* set once under @lock, freed at release */
	wait_queue_head_t wq;		/* poll() waiters */
	u32 cfg_seen;			/* generation of the last IOC_GET_CONFIG */
	atomic_t mappings;		/* VMAs mapping the area */
};

static const struct net_device_ops snic_netdev_ops;
static struct rtnl_link_ops snic_link_ops;

#define snic_dp_err(priv, fmt, ...)					\
	do {								\
		if (net_ratelimit())					\
			netdev_err((priv)->ndev, fmt, ##__VA_ARGS__);	\
	} while (0)

/* Why an ethtool request was refused: the ioctl path has no extack. */
#define snic_refused(ndev, fmt, ...)					\
	do {								\
		if (net_ratelimit())					\
			netdev_info(ndev, fmt, ##__VA_ARGS__);		\
	} while (0)

/* ------------------------------------------------------------------------
 * Datapath
 */

static u32 snic_k2u_used(struct snic_priv *priv, struct snic_rings *r,
			 bool *bad)
{
	/* Pairs with user space's release of the index after it copied the frames out. */
	u32 cons = smp_load_acquire(r->k2u_cons);
	u32 used = r->k2u_head - cons;

	*bad = used > r->k2u_mask + 1;
	if (*bad)
		snic_dp_err(priv, "k2u consumer index %u is not within one ring of producer %u\n",
			    cons, r->k2u_head);
	return used;
}

static void snic_count(struct snic_stats *s, u64 packets, u64 bytes,
		       u64 dropped, u64 errors, u64 length_errors)
{
	u64_stats_update_begin(&s->syncp);
	s->packets += packets;
	s->bytes += bytes;
	s->dropped += dropped;
	s->errors += errors;
	s->length_errors += length_errors;
	u64_stats_update_end(&s->syncp);
}

/*
 * Stop the transmit queue until k2u has room.  poll() and KICK restart it at
 * once; a consumer that does neither (it only takes frames) is not told,
 * so a timer looks at the ring every jiffy while the queue stays stopped.
 * A flag in the area asking user space to kick would need a full barrier
 * between its index store and its flag load, which the Python and C
 * consumers do not have; the timer costs nothing while the queue runs.
 */
static void snic_tx_stop(struct snic_priv *priv)
{
	netif_stop_queue(priv->ndev);
	mod_timer(&priv->tx_timer, jiffies + 1);
}

static netdev_tx_t snic_start_xmit(struct sk_buff *skb, struct net_device *ndev)
{
	struct snic_priv *priv = netdev_priv(ndev);
	unsigned int len = skb->len;
	struct snic_tun_desc *desc;
	struct snic_rings *r;
	bool bad = false, full = false, sent = false;
	unsigned long flags;
	u32 used, slot;

	spin_lock_irqsave(&priv->tx_lock, flags);
	r = priv->rings;
	if (!r)
		goto out;
	/* MTU + header + two VLAN tags (QinQ) fit a slot; anything longer is dropped. */
	if (unlikely(len > r->slot_size))
		goto out;
	used = snic_k2u_used(priv, r, &bad);
	if (unlikely(bad || used == r->k2u_mask + 1)) {
		/* Wait for user space to make room (or fix its index). */
		snic_tx_stop(priv);
		goto out;
	}
	slot = r->k2u_head & r->k2u_mask;
	if (skb_copy_bits(skb, 0, r->k2u_data + (size_t)slot * r->slot_size, len))
		goto out;
	/* The frame leaves the stack here: SOF_TIMESTAMPING_TX_SOFTWARE. */
	skb_tx_timestamp(skb);
	desc = &r->k2u_desc[slot];
	WRITE_ONCE(desc->len, len);
	WRITE_ONCE(desc->flags, 0);
	WRITE_ONCE(r->k2u_head, r->k2u_head + 1);
	/* The frame and its entry are visible before the index that publishes them. */
	smp_store_release(r->k2u_prod, r->k2u_head);
	sent = true;
	full = used + 1 == r->k2u_mask + 1;
	if (full)
		snic_tx_stop(priv);
out:
	/*
	 * Batching: one wake-up per burst the stack hands us, or when full.  A
	 * dropped last frame still ends the burst: wake for the ones before it.
	 */
	if (r && (full || !netdev_xmit_more()) && wq_has_sleeper(r->wq))
		wake_up_interruptible_poll(r->wq, EPOLLIN | EPOLLRDNORM);
	if (sent)
		snic_count(&priv->tx, 1, len, 0, 0, 0);
	else
		snic_count(&priv->tx, 0, 0, 1, r && bad, 0);
	spin_unlock_irqrestore(&priv->tx_lock, flags);
	if (sent)
		dev_consume_skb_any(skb);
	else
		dev_kfree_skb_any(skb);
	return NETDEV_TX_OK;
}

/*
 * Restart the transmit queue once user space has made room in k2u; true
 * while it stays stopped for want of room.
 */
static bool snic_tx_wake(struct snic_priv *priv)
{
	unsigned long flags;
	bool bad, waiting = false;
	struct snic_rings *r;

	spin_lock_irqsave(&priv->tx_lock, flags);
	r = priv->rings;
	if (r && netif_running(priv->ndev) && netif_queue_stopped(priv->ndev)) {
		if (snic_k2u_used(priv, r, &bad) <= r->k2u_mask && !bad)
			netif_wake_queue(priv->ndev);
		else
			waiting = !bad;	/* a bad index waits for poll() or KICK */
	}
	spin_unlock_irqrestore(&priv->tx_lock, flags);
	return waiting;
}

static void snic_tx_timer(struct timer_list *t)
{
	struct snic_priv *priv = from_timer(priv, t, tx_timer);

	if (snic_tx_wake(priv))
		mod_timer(&priv->tx_timer, jiffies + 1);
}

/* Copy up to @budget u2k frames into skbs on @q; returns entries consumed. */
static int snic_u2k_take(struct snic_priv *priv, struct snic_rings *r,
			 int budget, struct sk_buff_head *q)
{
	u32 max_len = min_t(u32, r->slot_size,
			    READ_ONCE(priv->ndev->mtu) + SNIC_TUN_FRAME_OVERHEAD);
	u32 dropped = 0, length_errors = 0;
	int done = 0;
	u32 prod, avail;

	/* Pairs with user space's store of the index after its frames. */
	prod = smp_load_acquire(r->u2k_prod);
	avail = prod - r->u2k_tail;

	if (avail > r->u2k_mask + 1) {
		snic_dp_err(priv, "u2k producer index %u is not within one ring of consumer %u\n",
			    prod, r->u2k_tail);
		snic_count(&priv->rx, 0, 0, 0, 1, 0);
		return 0;
	}
	while (done < budget && avail) {
		u32 slot = r->u2k_tail & r->u2k_mask;
		struct snic_tun_desc *desc = &r->u2k_desc[slot];
		u32 len = READ_ONCE(desc->len);
		u32 flags = READ_ONCE(desc->flags);
		struct sk_buff *skb;

		WRITE_ONCE(r->u2k_tail, r->u2k_tail + 1);
		avail--;
		done++;
		if (len < SNIC_TUN_FRAME_MIN || len > max_len || flags) {
			snic_dp_err(priv, "u2k entry %u: length %u (allowed %u..%u) flags %#x, dropped\n",
				    r->u2k_tail - 1, len, SNIC_TUN_FRAME_MIN, max_len, flags);
			length_errors++;
			continue;
		}
		skb = napi_alloc_skb(&priv->napi, len);
		if (!skb) {
			dropped++;
			continue;
		}
		skb_put_data(skb, r->u2k_data + (size_t)slot * r->slot_size, len);
		__skb_queue_tail(q, skb);
	}
	/* Slots are free for reuse only after the copies above. */
	smp_store_release(r->u2k_cons, r->u2k_tail);
	if (dropped || length_errors)
		snic_count(&priv->rx, 0, 0, dropped, length_errors, length_errors);
	if (wq_has_sleeper(r->wq))
		wake_up_interruptible_poll(r->wq, EPOLLOUT | EPOLLWRNORM);
	return done;
}

static int snic_napi_poll(struct napi_struct *napi, int budget)
{
	struct snic_priv *priv = container_of(napi, struct snic_priv, napi);
	struct sk_buff_head q;
	struct sk_buff *skb;
	u64 packets = 0, bytes = 0;
	int done = 0;

	/* netpoll's call (IRQs may be off): no transmit completions to reap here. */
	if (!budget)
		return 0;
	__skb_queue_head_init(&q);
	spin_lock(&priv->rx_lock);
	if (priv->rings)
		done = snic_u2k_take(priv, priv->rings, budget, &q);
	spin_unlock(&priv->rx_lock);

	/* Hand the frames to the stack outside the lock: it may transmit in turn. */
	while ((skb = __skb_dequeue(&q))) {
		packets++;
		bytes += skb->len;
		skb->protocol = eth_type_trans(skb, priv->ndev);
		napi_gro_receive(napi, skb);
	}
	if (packets)
		snic_count(&priv->rx, packets, bytes, 0, 0, 0);
	if (done < budget)
		napi_complete_done(napi, done);
	return done;
}

/*
 * Drop, and count, every frame the driver delivered while the interface is
 * down: in snic_stop() for what NAPI left behind, and on each KICK until
 * snic_open().  The module drops them, rather than the driver holding them
 * back: the module alone knows the state without delay (the driver learns of
 * it through POLLPRI, later), a driver that fills u2k regardless (an old or
 * a careless one) cannot stall receive for good, and the NIC's queue keeps
 * flowing as it does for a down interface of a real NIC.  Nothing queued
 * while down is delivered, late, after up.
 */
static void snic_u2k_drop_all(struct snic_priv *priv)
{
	struct snic_rings *r;
	u32 prod, avail;

	spin_lock_bh(&priv->rx_lock);
	r = priv->rings;
	if (!r)
		goto out;
	/* Pairs with user space's store of the index after its frames. */
	prod = smp_load_acquire(r->u2k_prod);
	avail = prod - r->u2k_tail;
	if (avail > r->u2k_mask + 1) {
		snic_dp_err(priv, "u2k producer index %u is not within one ring of consumer %u\n",
			    prod, r->u2k_tail);
		goto out;
	}
	if (avail) {
		r->u2k_tail = prod;
		/* Pairs with user space's load of the index before it reuses the slots. */
		smp_store_release(r->u2k_cons, r->u2k_tail);
		atomic64_add(avail, &priv->rx_dropped_down);
	}
	if (wq_has_sleeper(r->wq))
		wake_up_interruptible_poll(r->wq, EPOLLOUT | EPOLLWRNORM);
out:
	spin_unlock_bh(&priv->rx_lock);
}

/* ------------------------------------------------------------------------
 * net_device
 */

/*
 * The configuration user space reads with IOC_GET_CONFIG changed: bump the
 * generation and wake the handle (POLLPRI).  Any context, RTNL or not
 * (ndo_set_rx_mode runs under the address list lock with BHs off).
 */
static void snic_cfg_changed(struct snic_priv *priv)
{
	unsigned long flags;

	/* Ordered before the wait queue check by wq_has_sleeper()'s barrier. */
	atomic_inc(&priv->cfg_gen);
	spin_lock_irqsave(&priv->tx_lock, flags);
	if (priv->owner_wq && wq_has_sleeper(priv->owner_wq))
		wake_up_interruptible_poll(priv->owner_wq, EPOLLPRI);
	spin_unlock_irqrestore(&priv->tx_lock, flags);
}

static int snic_open(struct net_device *ndev)
{
	struct snic_priv *priv = netdev_priv(ndev);

	napi_enable(&priv->napi);
	netif_start_queue(ndev);
	/*
	 * A KICK in the moment before up found NAPI disabled and left its frames
	 * in u2k; user space waiting for room would never kick again.  Look now.
	 */
	local_bh_disable();
	napi_schedule(&priv->napi);
	local_bh_enable();
	snic_cfg_changed(priv);
	return 0;
}

static int snic_stop(struct net_device *ndev)
{
	struct snic_priv *priv = netdev_priv(ndev);

	netif_stop_queue(ndev);
	/* Not re-armed: the interface is no longer running. */
	del_timer_sync(&priv->tx_timer);
	napi_disable(&priv->napi);
	/* What NAPI did not take would be delivered stale after up. */
	snic_u2k_drop_all(priv);
	snic_cfg_changed(priv);
	return 0;
}

static void snic_set_rx_mode(struct net_device *ndev)
{
	snic_cfg_changed(netdev_priv(ndev));
}

static int snic_set_mac_address(struct net_device *ndev, void *addr)
{
	int ret = eth_mac_addr(ndev, addr);

	if (!ret)
		snic_cfg_changed(netdev_priv(ndev));
	return ret;
}

static int snic_change_mtu(struct net_device *ndev, int new_mtu)
{
	struct snic_priv *priv = netdev_priv(ndev);
	unsigned long flags;
	u32 slot_size = 0;

	spin_lock_irqsave(&priv->tx_lock, flags);
	if (priv->rings)
		slot_size = priv->rings->slot_size;
	spin_unlock_irqrestore(&priv->tx_lock, flags);
	if (slot_size && new_mtu + SNIC_TUN_FRAME_OVERHEAD > slot_size) {
		netdev_err(ndev, "MTU %d does not fit the driver's %u byte ring slots\n",
			   new_mtu, slot_size);
		return -EINVAL;
	}
	WRITE_ONCE(ndev->mtu, new_mtu);
	snic_cfg_changed(priv);
	return 0;
}

static void snic_fetch(const struct snic_stats *s, u64 *packets, u64 *bytes,
		       u64 *dropped, u64 *errors, u64 *length_errors)
{
	unsigned int start;

	do {
		start = u64_stats_fetch_begin(&s->syncp);
		*packets = s->packets;
		*bytes = s->bytes;
		*dropped = s->dropped;
		*errors = s->errors;
		*length_errors = s->length_errors;
	} while (u64_stats_fetch_retry(&s->syncp, start));
}

/* The module's own tunnel counters, in ethtool -S after the NIC's. */
static const char snic_tunnel_stat_names[][ETH_GSTRING_LEN] = {
	"tunnel_rx_packets", "tunnel_rx_bytes", "tunnel_rx_dropped",
	"tunnel_rx_errors", "tunnel_rx_length_errors",
	"tunnel_tx_packets", "tunnel_tx_bytes", "tunnel_tx_dropped",
	"tunnel_tx_errors",
};

#define SNIC_TUNNEL_STATS ARRAY_SIZE(snic_tunnel_stat_names)

/* The tunnel counters in snic_tunnel_stat_names order. */
static void snic_tunnel_stats(struct snic_priv *priv, u64 *v)
{
	u64 unused;

	snic_fetch(&priv->rx, &v[0], &v[1], &v[2], &v[3], &v[4]);
	v[2] += atomic64_read(&priv->rx_dropped_down);
	snic_fetch(&priv->tx, &v[5], &v[6], &v[7], &v[8], &unused);
}

/*
 * ip -s link: what this interface itself carried, dropped or refused, never
 * the NIC's totals (ethtool -S has those): the NIC's figures include the
 * fast-path applications' queues, and a new driver against a reset NIC would
 * make them go backwards.  The module's own counters only grow, and go on
 * when the driver dies and another attaches.
 */
static void snic_get_stats64(struct net_device *ndev,
			     struct rtnl_link_stats64 *stats)
{
	u64 t[SNIC_TUNNEL_STATS];

	snic_tunnel_stats(netdev_priv(ndev), t);
	stats->rx_packets = t[0];
	stats->rx_bytes = t[1];
	stats->rx_dropped = t[2];
	stats->rx_errors = t[3];
	stats->rx_length_errors = t[4];
	stats->tx_packets = t[5];
	stats->tx_bytes = t[6];
	stats->tx_dropped = t[7];
	stats->tx_errors = t[8];
}

static const struct net_device_ops snic_netdev_ops = {
	.ndo_open = snic_open,
	.ndo_stop = snic_stop,
	.ndo_start_xmit = snic_start_xmit,
	.ndo_change_mtu = snic_change_mtu,
	.ndo_get_stats64 = snic_get_stats64,
	.ndo_set_rx_mode = snic_set_rx_mode,
	.ndo_set_mac_address = snic_set_mac_address,
	.ndo_validate_addr = eth_validate_addr,
};

static void snic_get_drvinfo(struct net_device *ndev,
			     struct ethtool_drvinfo *info)
{
	struct snic_priv *priv = netdev_priv(ndev);

	strscpy(info->driver, KBUILD_MODNAME, sizeof(info->driver));
	snprintf(info->version, sizeof(info->version), "uapi %u.%u",
		 SNIC_TUN_VERSION >> 16, SNIC_TUN_VERSION & 0xffff);
	spin_lock_bh(&priv->pub_lock);
	strscpy(info->fw_version, priv->pub.fw_version, sizeof(info->fw_version));
	strscpy(info->bus_info, priv->pub.bus_info, sizeof(info->bus_info));
	spin_unlock_bh(&priv->pub_lock);
}

static int snic_get_sset_count(struct net_device *ndev, int sset)
{
	if (sset != ETH_SS_STATS)
		return -EOPNOTSUPP;
	return SNIC_TUN_COUNTERS + SNIC_TUNNEL_STATS;
}

static void snic_get_strings(struct net_device *ndev, u32 sset, u8 *data)
{
	if (sset != ETH_SS_STATS)
		return;
	BUILD_BUG_ON(sizeof(snic_tun_counter_names) != SNIC_TUN_COUNTERS * ETH_GSTRING_LEN);
	memcpy(data, snic_tun_counter_names, sizeof(snic_tun_counter_names));
	memcpy(data + sizeof(snic_tun_counter_names), snic_tunnel_stat_names,
	       sizeof(snic_tunnel_stat_names));
}

static void snic_get_ethtool_stats(struct net_device *ndev,
				   struct ethtool_stats *stats, u64 *data)
{
	struct snic_priv *priv = netdev_priv(ndev);

	spin_lock_bh(&priv->pub_lock);
	memcpy(data, priv->pub.counters, sizeof(priv->pub.counters));
	spin_unlock_bh(&priv->pub_lock);
	snic_tunnel_stats(priv, data + SNIC_TUN_COUNTERS);
}

/* Speed and duplex of the NIC's LINK register, as user space published them. */
static int snic_get_link_ksettings(struct net_device *ndev,
				   struct ethtool_link_ksettings *cmd)
{
	struct snic_priv *priv = netdev_priv(ndev);
	bool up = netif_carrier_ok(ndev);

	ethtool_link_ksettings_zero_link_mode(cmd, supported);
	ethtool_link_ksettings_zero_link_mode(cmd, advertising);
	cmd->base.port = PORT_OTHER;
	cmd->base.autoneg = AUTONEG_DISABLE;
	spin_lock_bh(&priv->pub_lock);
	cmd->base.speed = up && priv->pub.speed ? priv->pub.speed : SPEED_UNKNOWN;
	cmd->base.duplex = up ? priv->pub.duplex : DUPLEX_UNKNOWN;
	spin_unlock_bh(&priv->pub_lock);
	return 0;
}

/*
 * ethtool -g: the NIC's queue 0 rings, which snic0's frames use, as the
 * driver published them.  Before that (and with no driver), the tunnel's
 * rings (rx: u2k, tx: k2u) as the driver sized them with IOC_SETUP_RINGS;
 * 0 with no driver.  No -G: the driver sizes both when it starts.
 */
static void snic_get_ringparam(struct net_device *ndev,
			       struct ethtool_ringparam *ring,
			       struct kernel_ethtool_ringparam *kring,
			       struct netlink_ext_ack *extack)
{
	struct snic_priv *priv = netdev_priv(ndev);
	unsigned long flags;

	spin_lock_bh(&priv->pub_lock);
	ring->rx_max_pending = priv->pub.ring_max;
	ring->tx_max_pending = priv->pub.ring_max;
	ring->rx_pending = priv->pub.rx_ring;
	ring->tx_pending = priv->pub.tx_ring;
	spin_unlock_bh(&priv->pub_lock);
	if (ring->rx_max_pending)
		return;
	ring->rx_max_pending = 1U << SNIC_TUN_RING_LOG2_MAX;
	ring->tx_max_pending = 1U << SNIC_TUN_RING_LOG2_MAX;
	spin_lock_irqsave(&priv->tx_lock, flags);
	if (priv->rings) {
		ring->rx_pending = priv->rings->u2k_mask + 1;
		ring->tx_pending = priv->rings->k2u_mask + 1;
	}
	spin_unlock_irqrestore(&priv->tx_lock, flags);
}

/*
 * ethtool -l: snic0 has the NIC's queue 0 each way; the maximums are the
 * NIC's queues as the driver published them (the others belong to the
 * fast-path applications: ethtool -N action N steers to RX queue N).
 * Before a publish, one combined queue pair.
 */
static void snic_get_channels(struct net_device *ndev,
			      struct ethtool_channels *ch)
{
	struct snic_priv *priv = netdev_priv(ndev);

	spin_lock_bh(&priv->pub_lock);
	ch->max_rx = priv->pub.rx_queues;
	ch->max_tx = priv->pub.tx_queues;
	spin_unlock_bh(&priv->pub_lock);
	if (ch->max_rx) {
		ch->rx_count = 1;
		ch->tx_count = 1;
	} else {
		ch->max_combined = 1;
		ch->combined_count = 1;
	}
}

/*
 * ethtool -c: the NIC's receive interrupt moderation as the driver last
 * published it, else what -C asked for.
 */
static int snic_get_coalesce(struct net_device *ndev,
			     struct ethtool_coalesce *ec,
			     struct kernel_ethtool_coalesce *kec,
			     struct netlink_ext_ack *extack)
{
	struct snic_priv *priv = netdev_priv(ndev);
	u32 usecs;

	spin_lock_bh(&priv->pub_lock);
	usecs = priv->pub.rx_usecs;
	spin_unlock_bh(&priv->pub_lock);
	if (usecs == SNIC_TUN_RX_USECS_NONE)
		usecs = priv->rx_usecs_wanted;
	ec->rx_coalesce_usecs = usecs == SNIC_TUN_RX_USECS_NONE ? 0 : usecs;
	return 0;
}

/*
 * ethtool -C rx-usecs: a configuration change like the MTU; the driver
 * reads it (POLLPRI, IOC_GET_CONFIG), programs the NIC's IRQ_COALESCE and
 * publishes what it set.
 */
static int snic_set_coalesce(struct net_device *ndev,
			     struct ethtool_coalesce *ec,
			     struct kernel_ethtool_coalesce *kec,
			     struct netlink_ext_ack *extack)
{
	struct snic_priv *priv = netdev_priv(ndev);

	if (ec->rx_coalesce_usecs > SNIC_TUN_RX_USECS_MAX) {
		NL_SET_ERR_MSG_MOD(extack, "rx-usecs above the NIC's largest moderation");
		return -EINVAL;
	}
	priv->rx_usecs_wanted = ec->rx_coalesce_usecs;
	snic_cfg_changed(priv);
	return 0;
}

/* ------------------------------------------------------------------------
 * Steering: ethtool -N/-n, forwarded to the driver's rule table
 */

#define SNIC_RULE_FLAGS (SNIC_TUN_RULE_FLAGS_MATCH_DMAC_MASK |		\
			 SNIC_TUN_RULE_FLAGS_MATCH_ETHERTYPE_MASK |	\
			 SNIC_TUN_RULE_FLAGS_MATCH_IP_PROTO_MASK |	\
			 SNIC_TUN_RULE_FLAGS_MATCH_L4_DPORT_MASK)

static bool snic_seq_after(u32 a, u32 b)
{
	return (s32)(a - b) > 0;
}

/* A request carries a rule: its members from location on. */
static void snic_rule_of_req(struct snic_tun_rule *r, const struct snic_tun_rule_req *req)
{
	r->location = req->location;
	r->flags = req->flags;
	r->queue = req->queue;
	r->ethertype = req->ethertype;
	r->ip_proto = req->ip_proto;
	r->dport = req->dport;
	r->dmac = req->dmac;
}

static void snic_req_of_rule(struct snic_tun_rule_req *req, const struct snic_tun_rule *r)
{
	req->location = r->location;
	req->flags = r->flags;
	req->queue = r->queue;
	req->ethertype = r->ethertype;
	req->ip_proto = r->ip_proto;
	req->dport = r->dport;
	req->dmac = r->dmac;
}

/* Apply one request to the table @st shows; false if it no longer fits. */
static bool snic_steer_apply(struct snic_steer *st,
			     const struct snic_tun_rule_req *req)
{
	u32 i;

	if (req->op == SNIC_TUN_RULE_ADD) {
		if (st->count >= st->capacity)
			return false;
		snic_rule_of_req(&st->view[st->count], req);
		st->view[st->count].location = st->count;
		st->count++;
		return true;
	}
	if (req->location >= st->count)
		return false;
	for (i = req->location; i + 1 < st->count; i++) {
		st->view[i] = st->view[i + 1];
		st->view[i].location = i;
	}
	st->count--;
	return true;
}

/* The driver is gone: no table, and nobody will handle what was asked. */
static void snic_steer_forget(struct snic_priv *priv)
{
	struct snic_steer *st = &priv->steer;

	spin_lock(&priv->steer_lock);
	st->capacity = 0;
	st->count = 0;
	st->nreqs = 0;
	st->taken = st->next_seq - 1;
	spin_unlock(&priv->steer_lock);
}

static void snic_mac_bytes(u64 word, u8 *addr)
{
	int i;

	for (i = 0; i < ETH_ALEN; i++)
		addr[i] = word >> (8 * i);
}

/*
 * A rule as an ethtool flow spec.  -EOPNOTSUPP for a rule no flow type
 * says: an IP protocol (or port) with no ethertype matches IPv4 and IPv6,
 * and ethtool's IP flow types are one or the other.
 */
static int snic_rule_to_flow(const struct snic_tun_rule *r,
			     struct ethtool_rx_flow_spec *fs)
{
	bool proto = r->flags & SNIC_TUN_RULE_FLAGS_MATCH_IP_PROTO_MASK;
	bool port = r->flags & SNIC_TUN_RULE_FLAGS_MATCH_L4_DPORT_MASK;
	bool ether = r->flags & SNIC_TUN_RULE_FLAGS_MATCH_ETHERTYPE_MASK;
	bool dmac = r->flags & SNIC_TUN_RULE_FLAGS_MATCH_DMAC_MASK;
	bool v6 = r->ethertype == ETH_P_IPV6;
	bool l4 = r->ip_proto == IPPROTO_TCP || r->ip_proto == IPPROTO_UDP;
	u8 addr[ETH_ALEN];

	memset(fs, 0, sizeof(*fs));
	fs->location = r->location;
	fs->ring_cookie = r->queue;
	snic_mac_bytes(r->dmac, addr);
	if (!proto && !port) {
		fs->flow_type = ETHER_FLOW;
		if (ether) {
			fs->h_u.ether_spec.h_proto = htons(r->ethertype);
			fs->m_u.ether_spec.h_proto = htons(0xffff);
		}
		if (dmac) {
			ether_addr_copy(fs->h_u.ether_spec.h_dest, addr);
			eth_broadcast_addr(fs->m_u.ether_spec.h_dest);
		}
		return 0;
	}
	if (!ether || (r->ethertype != ETH_P_IP && !v6) || !proto || (port && !l4))
		return -EOPNOTSUPP;
	if (l4 && v6) {
		fs->flow_type = r->ip_proto == IPPROTO_TCP ? TCP_V6_FLOW : UDP_V6_FLOW;
		if (port) {
			fs->h_u.tcp_ip6_spec.pdst = htons(r->dport);
			fs->m_u.tcp_ip6_spec.pdst = htons(0xffff);
		}
	} else if (l4) {
		fs->flow_type = r->ip_proto == IPPROTO_TCP ? TCP_V4_FLOW : UDP_V4_FLOW;
		if (port) {
			fs->h_u.tcp_ip4_spec.pdst = htons(r->dport);
			fs->m_u.tcp_ip4_spec.pdst = htons(0xffff);
		}
	} else if (v6) {
		fs->flow_type = IPV6_USER_FLOW;
		fs->h_u.usr_ip6_spec.l4_proto = r->ip_proto;
		fs->m_u.usr_ip6_spec.l4_proto = 0xff;
	} else {
		fs->flow_type = IP_USER_FLOW;
		fs->h_u.usr_ip4_spec.ip_ver = ETH_RX_NFC_IP4;
		fs->h_u.usr_ip4_spec.proto = r->ip_proto;
		fs->m_u.usr_ip4_spec.proto = 0xff;
	}
	if (dmac) {
		fs->flow_type |= FLOW_MAC_EXT;
		ether_addr_copy(fs->h_ext.h_dest, addr);
		eth_broadcast_addr(fs->m_ext.h_dest);
	}
	return 0;
}

/* 1: every byte of @mask is set, 0: none is, -1: some are (the NIC compares whole fields). */
static int snic_mask(const void *mask, size_t len)
{
	if (!memchr_inv(mask, 0, len))
		return 0;
	return memchr_inv(mask, 0xff, len) ? -1 : 1;
}

static void snic_match_ip(struct snic_tun_rule *r, u16 ethertype, u8 proto)
{
	r->flags |= SNIC_TUN_RULE_FLAGS_MATCH_ETHERTYPE_MASK |
		    SNIC_TUN_RULE_FLAGS_MATCH_IP_PROTO_MASK;
	r->ethertype = ethertype;
	r->ip_proto = proto;
}

static int snic_match_port(struct snic_tun_rule *r, __be16 port, __be16 mask)
{
	int full = snic_mask(&mask, sizeof(mask));

	if (full < 0)
		return -EINVAL;
	if (full) {
		r->flags |= SNIC_TUN_RULE_FLAGS_MATCH_L4_DPORT_MASK;
		r->dport = ntohs(port);
	}
	return 0;
}

static int snic_match_dmac(struct snic_tun_rule *r, const u8 *addr, const u8 *mask)
{
	int full = snic_mask(mask, ETH_ALEN);
	int i;

	if (full < 0 || (full && (r->flags & SNIC_TUN_RULE_FLAGS_MATCH_DMAC_MASK)))
		return -EINVAL;
	if (full) {
		r->flags |= SNIC_TUN_RULE_FLAGS_MATCH_DMAC_MASK;
		for (i = 0; i < ETH_ALEN; i++)
			r->dmac |= (u64)addr[i] << (8 * i);
	}
	return 0;
}

/*
 * An ethtool flow spec as a rule of the NIC's steering table, which
 * compares the destination MAC, ethertype, IP protocol and TCP/UDP
 * destination port, each whole or not at all, and sends to an RX queue.
 * Anything else (addresses, source ports, TOS, VLAN, partial masks, drop,
 * RSS, VFs) is -EINVAL, with the reason in the kernel log.
 */
static int snic_flow_to_rule(struct net_device *ndev,
			     const struct ethtool_rx_flow_spec *fs,
			     struct snic_tun_rule *r)
{
	u32 type = fs->flow_type & ~(FLOW_EXT | FLOW_MAC_EXT);
	const char *why = "the NIC compares dst-mac, proto, l4proto and dst-port, whole";
	int ret = -EINVAL;

	memset(r, 0, sizeof(*r));
	if (fs->ring_cookie == RX_CLS_FLOW_DISC || fs->ring_cookie == RX_CLS_FLOW_WAKE) {
		snic_refused(ndev, "ethtool -N: steering cannot drop; the action is an RX queue\n");
		return -EINVAL;
	}
	if (fs->flow_type & FLOW_RSS || ethtool_get_flow_spec_ring_vf(fs->ring_cookie) ||
	    ethtool_get_flow_spec_ring(fs->ring_cookie) > U32_MAX) {
		snic_refused(ndev, "ethtool -N: the action is one RX queue (no RSS, no VF)\n");
		return -EINVAL;
	}
	r->queue = ethtool_get_flow_spec_ring(fs->ring_cookie);
	if ((fs->flow_type & FLOW_EXT) &&
	    (fs->m_ext.vlan_etype || fs->m_ext.vlan_tci || fs->m_ext.data[0] || fs->m_ext.data[1]))
		goto refused;

	switch (type) {
	case TCP_V4_FLOW:
	case UDP_V4_FLOW: {
		const struct ethtool_tcpip4_spec *h = &fs->h_u.tcp_ip4_spec;
		const struct ethtool_tcpip4_spec *m = &fs->m_u.tcp_ip4_spec;

		if (m->ip4src || m->ip4dst || m->psrc || m->tos)
			goto refused;
		snic_match_ip(r, ETH_P_IP, type == TCP_V4_FLOW ? IPPROTO_TCP : IPPROTO_UDP);
		ret = snic_match_port(r, h->pdst, m->pdst);
		break;
	}
	case TCP_V6_FLOW:
	case UDP_V6_FLOW: {
		const struct ethtool_tcpip6_spec *h = &fs->h_u.tcp_ip6_spec;
		const struct ethtool_tcpip6_spec *m = &fs->m_u.tcp_ip6_spec;

		if (memchr_inv(m->ip6src, 0, sizeof(m->ip6src)) ||
		    memchr_inv(m->ip6dst, 0, sizeof(m->ip6dst)) || m->psrc || m->tclass)
			goto refused;
		snic_match_ip(r, ETH_P_IPV6, type == TCP_V6_FLOW ? IPPROTO_TCP : IPPROTO_UDP);
		ret = snic_match_port(r, h->pdst, m->pdst);
		break;
	}
	case IP_USER_FLOW: {
		const struct ethtool_usrip4_spec *h = &fs->h_u.usr_ip4_spec;
		const struct ethtool_usrip4_spec *m = &fs->m_u.usr_ip4_spec;

		if (m->ip4src || m->ip4dst || m->l4_4_bytes || m->tos || m->ip_ver ||
		    (m->proto && m->proto != 0xff))
			goto refused;
		snic_match_ip(r, ETH_P_IP, h->proto);
		if (!m->proto)
			r->flags &= ~SNIC_TUN_RULE_FLAGS_MATCH_IP_PROTO_MASK;
		ret = 0;
		break;
	}
	case IPV6_USER_FLOW: {
		const struct ethtool_usrip6_spec *h = &fs->h_u.usr_ip6_spec;
		const struct ethtool_usrip6_spec *m = &fs->m_u.usr_ip6_spec;

		if (memchr_inv(m->ip6src, 0, sizeof(m->ip6src)) ||
		    memchr_inv(m->ip6dst, 0, sizeof(m->ip6dst)) || m->l4_4_bytes || m->tclass ||
		    (m->l4_proto && m->l4_proto != 0xff))
			goto refused;
		snic_match_ip(r, ETH_P_IPV6, h->l4_proto);
		if (!m->l4_proto)
			r->flags &= ~SNIC_TUN_RULE_FLAGS_MATCH_IP_PROTO_MASK;
		ret = 0;
		break;
	}
	case ETHER_FLOW: {
		const struct ethhdr *h = &fs->h_u.ether_spec, *m = &fs->m_u.ether_spec;
		int full = snic_mask(&m->h_proto, sizeof(m->h_proto));

		if (!is_zero_ether_addr(m->h_source) || full < 0)
			goto refused;
		if (full) {
			r->flags |= SNIC_TUN_RULE_FLAGS_MATCH_ETHERTYPE_MASK;
			r->ethertype = ntohs(h->h_proto);
		}
		ret = snic_match_dmac(r, h->h_dest, m->h_dest);
		break;
	}
	default:
		why = "a flow type the NIC does not steer (it has tcp4/6, udp4/6, ip4/6 and ether)";
		goto refused;
	}
	if (!ret && (fs->flow_type & FLOW_MAC_EXT))
		ret = snic_match_dmac(r, fs->h_ext.h_dest, fs->m_ext.h_dest);
	if (!ret)
		return 0;
refused:
	snic_refused(ndev, "ethtool -N: %s\n", why);
	return -EINVAL;
}

/* Can ethtool show rule @r?  Says why not in the kernel log (rate limited). */
static bool snic_rule_shown(struct net_device *ndev, const struct snic_tun_rule *r)
{
	struct ethtool_rx_flow_spec fs;

	if (!snic_rule_to_flow(r, &fs))
		return true;
	/* An IP protocol over IPv4 and IPv6 (or over another ethertype): no flow type says it. */
	snic_refused(ndev, "ethtool -n: rule %u not shown: %s\n", r->location,
		     "no flow type says it (IPv4 and IPv6?); splitnic rules list shows it");
	return false;
}

static int snic_get_rxnfc(struct net_device *ndev, struct ethtool_rxnfc *info,
			  u32 *rule_locs)
{
	struct snic_priv *priv = netdev_priv(ndev);
	struct snic_steer *st = &priv->steer;
	u32 i, n = 0;
	int ret = 0;

	spin_lock(&priv->steer_lock);
	if (!st->capacity) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	switch (info->cmd) {
	case ETHTOOL_GRXRINGS:
		info->data = st->rx_queues;
		break;
	case ETHTOOL_GRXCLSRLCNT:
		for (i = 0; i < st->count; i++)
			n += snic_rule_shown(ndev, &st->view[i]);
		info->rule_cnt = n;
		/* The module places rules: at the end of the table. */
		info->data = st->capacity | RX_CLS_LOC_SPECIAL;
		break;
	case ETHTOOL_GRXCLSRULE:
		if (info->fs.location >= st->count)
			ret = -ENOENT;
		else if (!snic_rule_shown(ndev, &st->view[info->fs.location]))
			ret = -EOPNOTSUPP;
		else
			ret = snic_rule_to_flow(&st->view[info->fs.location], &info->fs);
		break;
	case ETHTOOL_GRXCLSRLALL:
		for (i = 0; i < st->count && !ret; i++) {
			if (!snic_rule_shown(ndev, &st->view[i]))
				continue;
			if (n < info->rule_cnt)
				rule_locs[n++] = i;
			else
				ret = -EMSGSIZE;
		}
		info->rule_cnt = n;
		info->data = st->capacity;
		break;
	default:
		ret = -EOPNOTSUPP;
	}
out:
	spin_unlock(&priv->steer_lock);
	return ret;
}

/* Queue a request for the driver, show it in the table at once, wake the driver. */
static int snic_steer_request(struct snic_priv *priv, u32 op,
			      struct snic_tun_rule *rule)
{
	struct snic_steer *st = &priv->steer;
	struct snic_tun_rule_req *req;

	if (st->nreqs >= SNIC_TUN_RULE_REQS_MAX) {
		snic_refused(priv->ndev, "ethtool -N: %u requests wait for the driver already\n",
			     st->nreqs);
		return -EBUSY;
	}
	req = &st->reqs[st->nreqs];
	memset(req, 0, sizeof(*req));
	req->seq = st->next_seq;
	req->op = op;
	snic_req_of_rule(req, rule);
	if (!snic_steer_apply(st, req))
		return -EINVAL;
	st->nreqs++;
	st->next_seq++;
	return 0;
}

static int snic_set_rxnfc(struct net_device *ndev, struct ethtool_rxnfc *info)
{
	struct snic_priv *priv = netdev_priv(ndev);
	struct snic_steer *st = &priv->steer;
	struct snic_tun_rule rule;
	u32 loc = info->fs.location;
	int ret;

	if (info->cmd == ETHTOOL_SRXCLSRLINS) {
		ret = snic_flow_to_rule(ndev, &info->fs, &rule);
		if (ret)
			return ret;
	} else if (info->cmd != ETHTOOL_SRXCLSRLDEL) {
		return -EOPNOTSUPP;
	}
	spin_lock(&priv->steer_lock);
	if (!st->capacity) {
		ret = -EOPNOTSUPP;
	} else if (info->cmd == ETHTOOL_SRXCLSRLDEL) {
		if (loc < st->count)
			ret = snic_steer_request(priv, SNIC_TUN_RULE_DEL, &st->view[loc]);
		else
			ret = -ENOENT;
	} else if (rule.queue >= st->rx_queues) {
		snic_refused(ndev, "ethtool -N: action %u: the NIC has RX queues 0..%u\n",
			     rule.queue, st->rx_queues - 1);
		ret = -EINVAL;
	} else if (st->count >= st->capacity) {
		ret = -ENOSPC;
	} else if (loc != RX_CLS_LOC_ANY && loc != RX_CLS_LOC_LAST && loc != st->count) {
		/* Entry order is priority: a new rule goes last, as splitnic rules add puts it. */
		snic_refused(ndev, "ethtool -N: loc %u: a new rule takes the next free entry, %u\n",
			     loc, st->count);
		ret = -EINVAL;
	} else {
		info->fs.location = st->count;
		rule.location = st->count;
		ret = snic_steer_request(priv, SNIC_TUN_RULE_ADD, &rule);
	}
	spin_unlock(&priv->steer_lock);
	if (!ret)
		snic_cfg_changed(priv);
	return ret;
}

static const struct ethtool_ops snic_ethtool_ops = {
	.supported_coalesce_params = ETHTOOL_COALESCE_RX_USECS,
	.get_drvinfo = snic_get_drvinfo,
	.get_link = ethtool_op_get_link,
	.get_sset_count = snic_get_sset_count,
	.get_strings = snic_get_strings,
	.get_ethtool_stats = snic_get_ethtool_stats,
	.get_link_ksettings = snic_get_link_ksettings,
	.get_ts_info = ethtool_op_get_ts_info,
	.get_ringparam = snic_get_ringparam,
	.get_channels = snic_get_channels,
	.get_coalesce = snic_get_coalesce,
	.set_coalesce = snic_set_coalesce,
	.get_rxnfc = snic_get_rxnfc,
	.set_rxnfc = snic_set_rxnfc,
};

/* ------------------------------------------------------------------------
 * Attaching handles to interfaces (RTNL held)
 */

/* Make @f (or no handle) the one whose poll() configuration changes wake. */
static void snic_set_owner(struct snic_priv *priv, struct snic_file *f)
{
	unsigned long flags;

	priv->owner = f;
	spin_lock_irqsave(&priv->tx_lock, flags);
	priv->owner_wq = f ? &f->wq : NULL;
	spin_unlock_irqrestore(&priv->tx_lock, flags);
}

/* Connect @r to the datapath of @priv, or disconnect it with NULL. */
static void snic_link(struct snic_priv *priv, struct snic_rings *r)
{
	unsigned long flags;

	spin_lock_irqsave(&priv->tx_lock, flags);
	spin_lock(&priv->rx_lock);
	priv->rings = r;
	spin_unlock(&priv->rx_lock);
	spin_unlock_irqrestore(&priv->tx_lock, flags);
}

static void snic_detach(struct snic_file *f)
{
	struct snic_priv *priv = rtnl_dereference(f->priv);

	if (!priv)
		return;
	netif_carrier_off(priv->ndev);
	/* After this no datapath code touches the rings: NAPI and xmit hold the locks. */
	snic_link(priv, NULL);
	snic_set_owner(priv, NULL);
	snic_steer_forget(priv);
	/* The NIC's rings and queues were the driver's: ethtool -g/-l fall back to the tunnel's. */
	spin_lock_bh(&priv->pub_lock);
	priv->pub.rx_ring = 0;
	priv->pub.tx_ring = 0;
	priv->pub.ring_max = 0;
	priv->pub.rx_queues = 0;
	priv->pub.tx_queues = 0;
	spin_unlock_bh(&priv->pub_lock);
	/* KICK and poll() may still see @priv until the next grace period. */
	RCU_INIT_POINTER(f->priv, NULL);
	/* A driver waiting in poll() learns that its interface is gone. */
	wake_up_interruptible_poll(&f->wq, EPOLLHUP);
	netdev_dbg(priv->ndev, "driver detached\n");
}

/*
 * rtnl_link_ops.dellink: `ip link del`, the end of the interface's network
 * namespace, rmmod and IOC_DESTROY.  unregister_netdevice_many() waits for
 * an RCU grace period before the device is freed, so a KICK or poll() that
 * still sees the detached @priv is done with it by then.
 */
static void snic_dellink(struct net_device *ndev, struct list_head *head)
{
	struct snic_priv *priv = netdev_priv(ndev);

	ASSERT_RTNL();
	if (priv->owner)
		snic_detach(priv->owner);
	unregister_netdevice_queue(ndev, head);
}

static struct rtnl_link_ops snic_link_ops = {
	/* No .setup: `ip link add type splitnic` is refused; IOC_CREATE makes interfaces. */
	.kind = KBUILD_MODNAME,
	.dellink = snic_dellink,
};

static int snic_create(struct snic_file *f, const char *name, const u8 *mac,
		       u32 mtu)
{
	struct net_device *ndev;
	struct snic_priv *priv;
	int ret;

	ndev = alloc_netdev(sizeof(*priv), name,
			    strchr(name, '%') ? NET_NAME_ENUM : NET_NAME_USER,
			    ether_setup);
	if (!ndev)
		return -ENOMEM;
	priv = netdev_priv(ndev);
	priv->ndev = ndev;
	spin_lock_init(&priv->tx_lock);
	spin_lock_init(&priv->rx_lock);
	spin_lock_init(&priv->pub_lock);
	timer_setup(&priv->tx_timer, snic_tx_timer, 0);
	u64_stats_init(&priv->tx.syncp);
	u64_stats_init(&priv->rx.syncp);
	atomic_set(&priv->cfg_gen, 1);
	priv->pub.duplex = DUPLEX_UNKNOWN;
	priv->pub.rx_usecs = SNIC_TUN_RX_USECS_NONE;
	priv->rx_usecs_wanted = SNIC_TUN_RX_USECS_NONE;
	spin_lock_init(&priv->steer_lock);
	priv->steer.next_seq = 1;
	ndev->netdev_ops = &snic_netdev_ops;
	ndev->ethtool_ops = &snic_ethtool_ops;
	ndev->rtnl_link_ops = &snic_link_ops;
	ndev->min_mtu = SNIC_TUN_MTU_MIN;
	ndev->max_mtu = SNIC_TUN_MTU_MAX;
	ndev->mtu = mtu;
	ndev->priv_flags |= IFF_LIVE_ADDR_CHANGE;
	ndev->needs_free_netdev = true;
	if (is_zero_ether_addr(mac))
		eth_hw_addr_random(ndev);
	else
		eth_hw_addr_set(ndev, mac);
	dev_net_set(ndev, current->nsproxy->net_ns);
	netif_napi_add(ndev, &priv->napi, snic_napi_poll);
	netif_carrier_off(ndev);

	ret = register_netdevice(ndev);
	if (ret) {
		free_netdev(ndev);
		return ret;
	}
	snic_set_owner(priv, f);
	rcu_assign_pointer(f->priv, priv);
	netdev_info(ndev, "splitnic tunnel interface, MAC %pM, MTU %u, uapi %u.%u (spec %08x)\n",
		    ndev->dev_addr, ndev->mtu, SNIC_TUN_VERSION >> 16,
		    SNIC_TUN_VERSION & 0xffff, SNIC_TUN_SPEC_HASH);
	return 0;
}

static int snic_set_mac(struct net_device *ndev, const u8 *mac)
{
	struct sockaddr sa = { .sa_family = ndev->type };

	memcpy(sa.sa_data, mac, ETH_ALEN);
	return dev_set_mac_address(ndev, &sa, NULL);
}

/* What ATTACH changed, to put back if it fails after all. */
struct snic_undo {
	u32 mtu;
	u8 mac[ETH_ALEN];
};

static void snic_undo_attach(struct snic_file *f, const struct snic_undo *undo)
{
	struct snic_priv *priv = rtnl_dereference(f->priv);

	if (!priv)
		return;
	snic_detach(f);
	if (!ether_addr_equal(priv->ndev->dev_addr, undo->mac))
		snic_set_mac(priv->ndev, undo->mac);
	if (priv->ndev->mtu != undo->mtu)
		dev_set_mtu(priv->ndev, undo->mtu);
}

static int snic_attach(struct snic_file *f, const char *name, const u8 *mac,
		       u32 mtu, struct snic_undo *undo)
{
	struct net_device *ndev;
	struct snic_priv *priv;
	int ret;

	ndev = __dev_get_by_name(current->nsproxy->net_ns, name);
	if (!ndev || ndev->netdev_ops != &snic_netdev_ops)
		return -ENODEV;
	priv = netdev_priv(ndev);
	if (priv->owner)
		return -EBUSY;
	undo->mtu = ndev->mtu;
	ether_addr_copy(undo->mac, ndev->dev_addr);
	if (mtu) {
		ret = dev_set_mtu(ndev, mtu);
		if (ret)
			return ret;
	}
	if (!is_zero_ether_addr(mac)) {
		ret = snic_set_mac(ndev, mac);
		if (ret) {
			/* A failed ATTACH changes nothing. */
			dev_set_mtu(ndev, undo->mtu);
			return ret;
		}
	}
	snic_set_owner(priv, f);
	rcu_assign_pointer(f->priv, priv);
	netdev_dbg(ndev, "driver attached\n");
	return 0;
}

/* ------------------------------------------------------------------------
 * ioctls
 */

static int snic_ioctl_info(void __user *uarg)
{
	struct snic_tun_info info = {
		.version = SNIC_TUN_VERSION,
		.spec_hash = SNIC_TUN_SPEC_HASH,
		.nic_spec_hash = SNIC_SPEC_HASH,
	};

	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

/* Check an IfReq and decode its name, MAC and MTU. */
static int snic_parse_if_req(const struct snic_tun_if_req *req, bool create,
			     char *name, u8 *mac, u32 *mtu)
{
	size_t len;
	int i;

	if (req->flags || req->reserved || req->ifindex)
		return -EINVAL;
	put_unaligned_le64(req->name_lo, name);
	put_unaligned_le64(req->name_hi, name + 8);
	len = strnlen(name, IFNAMSIZ);
	if (len == IFNAMSIZ || memchr_inv(name + len, 0, IFNAMSIZ - len))
		return -EINVAL;
	if (!len && create)
		strscpy(name, "snic%d", IFNAMSIZ);
	if (!dev_valid_name(name) || (!create && strchr(name, '%')))
		return -EINVAL;
	if (req->mac >> (8 * ETH_ALEN))
		return -EINVAL;
	for (i = 0; i < ETH_ALEN; i++)
		mac[i] = req->mac >> (8 * i);
	if (!is_zero_ether_addr(mac) && !is_valid_ether_addr(mac))
		return -EINVAL;
	if (req->mtu && (req->mtu < SNIC_TUN_MTU_MIN || req->mtu > SNIC_TUN_MTU_MAX))
		return -EINVAL;
	*mtu = req->mtu;
	if (!*mtu && create)
		*mtu = SNIC_TUN_MTU_DEFAULT;
	return 0;
}

/* A MAC address as the uapi encodes it: byte 0 in bits 7..0. */
static u64 snic_mac_word(const u8 *mac)
{
	u64 word = 0;
	int i;

	for (i = 0; i < ETH_ALEN; i++)
		word |= (u64)mac[i] << (8 * i);
	return word;
}

static int snic_ioctl_if(struct snic_file *f, void __user *uarg, bool create)
{
	struct snic_tun_if_req req;
	struct snic_undo undo;
	char name[IFNAMSIZ];
	u8 mac[ETH_ALEN];
	struct net_device *ndev;
	struct snic_priv *priv;
	u32 mtu;
	int ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	ret = snic_parse_if_req(&req, create, name, mac, &mtu);
	if (ret)
		return ret;
	if (!ns_capable(current->nsproxy->net_ns->user_ns, CAP_NET_ADMIN))
		return -EPERM;

	rtnl_lock();
	/* One interface per handle; a handle whose interface was destroyed is spent. */
	if (rtnl_dereference(f->priv) || f->rings)
		ret = -EBUSY;
	else if (create)
		ret = snic_create(f, name, mac, mtu);
	else
		ret = snic_attach(f, name, mac, mtu, &undo);
	if (!ret) {
		ndev = rtnl_dereference(f->priv)->ndev;
		memset(name, 0, IFNAMSIZ);
		strscpy(name, ndev->name, IFNAMSIZ);
		req.name_lo = get_unaligned_le64(name);
		req.name_hi = get_unaligned_le64(name + 8);
		req.mac = snic_mac_word(ndev->dev_addr);
		req.mtu = ndev->mtu;
		req.ifindex = ndev->ifindex;
	}
	rtnl_unlock();
	if (ret || !copy_to_user(uarg, &req, sizeof(req)))
		return ret;

	/* The caller cannot learn of the interface: take it back. */
	rtnl_lock();
	priv = rtnl_dereference(f->priv);
	if (priv && create) {
		snic_detach(f);
		unregister_netdevice(priv->ndev);
	} else if (priv) {
		snic_undo_attach(f, &undo);
	}
	rtnl_unlock();
	return -EFAULT;
}

static int snic_ioctl_destroy(struct snic_file *f)
{
	struct snic_priv *priv;
	LIST_HEAD(kill);

	rtnl_lock();
	priv = rtnl_dereference(f->priv);
	if (priv) {
		snic_dellink(priv->ndev, &kill);
		/* needs_free_netdev: freed once unregistration completes at rtnl_unlock(). */
		unregister_netdevice_many(&kill);
	}
	rtnl_unlock();
	return priv ? 0 : -ENODEV;
}

static int snic_ioctl_setup_rings(struct snic_file *f, void __user *uarg)
{
	struct snic_tun_ring_req req;
	struct snic_priv *priv;
	struct snic_rings *r;
	size_t k2u_n, u2k_n, size;
	u32 k2u_desc, u2k_desc, k2u_data, u2k_data;
	int ret = 0;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.area_size || req.k2u_desc || req.u2k_desc ||
	    req.k2u_data || req.u2k_data)
		return -EINVAL;
	if (req.k2u_log2 < SNIC_TUN_RING_LOG2_MIN || req.k2u_log2 > SNIC_TUN_RING_LOG2_MAX ||
	    req.u2k_log2 < SNIC_TUN_RING_LOG2_MIN || req.u2k_log2 > SNIC_TUN_RING_LOG2_MAX)
		return -EINVAL;
	if (!is_power_of_2(req.slot_size) || req.slot_size < SNIC_TUN_SLOT_SIZE_MIN ||
	    req.slot_size > SNIC_TUN_SLOT_SIZE_MAX)
		return -EINVAL;
	/* The layout of the spec's area_layout(); the limits above keep it below 2**32. */
	k2u_n = (size_t)1 << req.k2u_log2;
	u2k_n = (size_t)1 << req.u2k_log2;
	k2u_desc = SNIC_TUN_CTRL_SIZE;
	u2k_desc = k2u_desc + ALIGN(k2u_n * SNIC_TUN_DESC_SIZE, SNIC_TUN_AREA_ALIGN);
	k2u_data = u2k_desc + ALIGN(u2k_n * SNIC_TUN_DESC_SIZE, SNIC_TUN_AREA_ALIGN);
	u2k_data = k2u_data + k2u_n * req.slot_size;
	size = u2k_data + u2k_n * req.slot_size;
	if (size > SNIC_TUN_AREA_MAX)
		return -EINVAL;
	if (!rcu_access_pointer(f->priv))
		return -ENODEV;
	if (f->rings)
		return -EBUSY;

	/*
	 * Up to AREA_MAX per handle: charged to the driver's memory cgroup
	 * (vmalloc_user() would not; mmap inserts the pages itself).
	 */
	r = kzalloc(sizeof(*r), GFP_KERNEL_ACCOUNT);
	if (!r)
		return -ENOMEM;
	r->area = __vmalloc(size, GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!r->area) {
		kfree(r);
		return -ENOMEM;
	}
	r->area_size = size;
	r->slot_size = req.slot_size;
	r->k2u_mask = k2u_n - 1;
	r->u2k_mask = u2k_n - 1;
	r->k2u_prod = r->area + SNIC_TUN_CTRL_K2U_PROD;
	r->k2u_cons = r->area + SNIC_TUN_CTRL_K2U_CONS;
	r->u2k_prod = r->area + SNIC_TUN_CTRL_U2K_PROD;
	r->u2k_cons = r->area + SNIC_TUN_CTRL_U2K_CONS;
	r->k2u_desc = r->area + k2u_desc;
	r->u2k_desc = r->area + u2k_desc;
	r->k2u_data = r->area + k2u_data;
	r->u2k_data = r->area + u2k_data;
	r->wq = &f->wq;

	/*
	 * Answer first: once linked the rings cannot be taken back (another
	 * thread may have mapped them), so an answer that faults must fail
	 * before, leaving the handle as it was for a retry.
	 */
	req.area_size = size;
	req.k2u_desc = k2u_desc;
	req.u2k_desc = u2k_desc;
	req.k2u_data = k2u_data;
	req.u2k_data = u2k_data;
	if (copy_to_user(uarg, &req, sizeof(req))) {
		vfree(r->area);
		kfree(r);
		return -EFAULT;
	}

	rtnl_lock();
	priv = rtnl_dereference(f->priv);
	if (!priv) {
		ret = -ENODEV;
	} else if (priv->ndev->mtu + SNIC_TUN_FRAME_OVERHEAD > req.slot_size) {
		ret = -EINVAL;
	} else {
		/* mmap() and poll() read f->rings without the lock. */
		smp_store_release(&f->rings, r);
		snic_link(priv, r);
		if (netif_running(priv->ndev))
			netif_wake_queue(priv->ndev);
	}
	rtnl_unlock();
	if (ret) {
		vfree(r->area);
		kfree(r);
	}
	return ret;
}

static int snic_ioctl_set_carrier(struct snic_file *f, u32 __user *uarg)
{
	struct snic_priv *priv;
	int ret = 0;
	u32 up;

	if (get_user(up, uarg))
		return -EFAULT;
	if (up > 1)
		return -EINVAL;
	rtnl_lock();
	priv = rtnl_dereference(f->priv);
	if (!priv)
		ret = -ENODEV;
	else if (up && !f->rings)
		ret = -ENXIO;
	else if (up)
		netif_carrier_on(priv->ndev);
	else
		netif_carrier_off(priv->ndev);
	rtnl_unlock();
	return ret;
}

static int snic_ioctl_kick(struct snic_file *f)
{
	struct snic_priv *priv;
	int ret = 0;

	rcu_read_lock();
	priv = rcu_dereference(f->priv);
	if (!priv) {
		ret = -ENODEV;
	} else if (!f->rings) {
		ret = -ENXIO;
	} else if (!netif_running(priv->ndev)) {
		/* Down: NAPI is disabled; the frames are dropped, not kept for later. */
		snic_u2k_drop_all(priv);
	} else {
		/*
		 * With BHs off the poll runs at local_bh_enable(), here,
		 * instead of waking ksoftirqd.  Should the interface go down
		 * meanwhile, snic_stop() drops what NAPI did not take.
		 */
		local_bh_disable();
		napi_schedule(&priv->napi);
		local_bh_enable();
		snic_tx_wake(priv);
	}
	rcu_read_unlock();
	return ret;
}

static int snic_ioctl_get_config(struct snic_file *f, void __user *uarg)
{
	struct snic_tun_config cfg;
	struct netdev_hw_addr *ha;
	struct net_device *ndev;
	struct snic_priv *priv;
	u64 *addrs = NULL;
	u32 n = 0, gen;
	int ret = 0;

	if (copy_from_user(&cfg, uarg, sizeof(cfg)))
		return -EFAULT;
	if (cfg.generation || cfg.flags || cfg.mtu || cfg.uc_count || cfg.mc_count ||
	    cfg.mac || cfg.rx_usecs || cfg.reserved || cfg.addrs_max > SNIC_TUN_ADDR_MAX)
		return -EINVAL;
	if (cfg.addrs_max) {
		addrs = kcalloc(cfg.addrs_max, sizeof(*addrs), GFP_KERNEL);
		if (!addrs)
			return -ENOMEM;
	}

	rtnl_lock();
	priv = rtnl_dereference(f->priv);
	if (!priv) {
		rtnl_unlock();
		kfree(addrs);
		return -ENODEV;
	}
	ndev = priv->ndev;
	/* Read before the snapshot: a change while we copy bumps it again. */
	gen = atomic_read(&priv->cfg_gen);
	cfg.generation = gen;
	if (netif_running(ndev))
		cfg.flags |= SNIC_TUN_CONFIG_FLAGS_UP_MASK;
	if (ndev->flags & IFF_PROMISC)
		cfg.flags |= SNIC_TUN_CONFIG_FLAGS_PROMISC_MASK;
	if (ndev->flags & IFF_ALLMULTI)
		cfg.flags |= SNIC_TUN_CONFIG_FLAGS_ALLMULTI_MASK;
	cfg.mtu = ndev->mtu;
	cfg.mac = snic_mac_word(ndev->dev_addr);
	cfg.rx_usecs = priv->rx_usecs_wanted;
	netif_addr_lock_bh(ndev);
	cfg.uc_count = netdev_uc_count(ndev);
	cfg.mc_count = netdev_mc_count(ndev);
	netdev_for_each_uc_addr(ha, ndev) {
		if (n < cfg.addrs_max)
			addrs[n] = snic_mac_word(ha->addr);
		n++;
	}
	netdev_for_each_mc_addr(ha, ndev) {
		if (n < cfg.addrs_max)
			addrs[n] = snic_mac_word(ha->addr);
		n++;
	}
	netif_addr_unlock_bh(ndev);
	rtnl_unlock();

	if (n > cfg.addrs_max) {
		cfg.flags |= SNIC_TUN_CONFIG_FLAGS_TRUNCATED_MASK;
		n = cfg.addrs_max;
	}
	if (n && copy_to_user(u64_to_user_ptr(cfg.addrs), addrs, n * sizeof(*addrs)))
		ret = -EFAULT;
	kfree(addrs);
	if (!ret && copy_to_user(uarg, &cfg, sizeof(cfg)))
		ret = -EFAULT;
	if (!ret)
		WRITE_ONCE(f->cfg_seen, gen);
	return ret;
}

/*
 * Check a NUL-terminated printable string of the uapi: TEXT_LEN bytes in
 * 64-bit words, byte 0 in bits 7..0, which on this little-endian host is
 * the string's memory layout already.
 */
static int snic_text(const struct snic_tun_publish *req, size_t offset, char *text)
{
	size_t len, i;

	memcpy(text, (const u8 *)req + offset, SNIC_TUN_TEXT_LEN);
	len = strnlen(text, SNIC_TUN_TEXT_LEN);
	if (len == SNIC_TUN_TEXT_LEN || memchr_inv(text + len, 0, SNIC_TUN_TEXT_LEN - len))
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (text[i] < 0x20 || text[i] > 0x7e)
			return -EINVAL;
	return 0;
}

/* The NIC's ring sizes and queue counts: all known and sane, or all 0. */
static bool snic_publish_rings_valid(const struct snic_tun_publish *req)
{
	u32 least = 1U << SNIC_RING_LOG2_MIN, most = req->ring_max;

	if (!req->ring_max && !req->rx_ring && !req->tx_ring && !req->rx_queues && !req->tx_queues)
		return true;
	return is_power_of_2(most) && most >= least && most <= 1U << SNIC_RING_LOG2_MAX &&
	       is_power_of_2(req->rx_ring) && req->rx_ring >= least && req->rx_ring <= most &&
	       is_power_of_2(req->tx_ring) && req->tx_ring >= least && req->tx_ring <= most &&
	       req->rx_queues && req->rx_queues <= SNIC_TUN_RX_QUEUES_MAX &&
	       req->tx_queues && req->tx_queues <= SNIC_TUN_TX_QUEUES_MAX;
}

static int snic_ioctl_publish(struct snic_file *f, void __user *uarg)
{
	static const u8 duplex[] = { DUPLEX_UNKNOWN, DUPLEX_HALF, DUPLEX_FULL };
	char fw_version[SNIC_TUN_TEXT_LEN], bus_info[SNIC_TUN_TEXT_LEN];
	struct snic_tun_publish req;
	struct snic_priv *priv;
	u64 *counters = NULL;
	int ret = 0;

	BUILD_BUG_ON(sizeof(fw_version) != ETHTOOL_FWVERS_LEN);
	BUILD_BUG_ON(sizeof(bus_info) != ETHTOOL_BUSINFO_LEN);
	BUILD_BUG_ON(offsetof(struct snic_tun_publish, fw_version0) + SNIC_TUN_TEXT_LEN !=
		     offsetof(struct snic_tun_publish, bus_info0));
	BUILD_BUG_ON(offsetof(struct snic_tun_publish, bus_info0) + SNIC_TUN_TEXT_LEN !=
		     sizeof(struct snic_tun_publish));
	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || (req.count && req.count != SNIC_TUN_COUNTERS) ||
	    req.speed > SNIC_TUN_SPEED_MAX || req.duplex >= ARRAY_SIZE(duplex) ||
	    (req.rx_usecs > SNIC_TUN_RX_USECS_MAX && req.rx_usecs != SNIC_TUN_RX_USECS_NONE) ||
	    !snic_publish_rings_valid(&req) ||
	    snic_text(&req, offsetof(struct snic_tun_publish, fw_version0), fw_version) ||
	    snic_text(&req, offsetof(struct snic_tun_publish, bus_info0), bus_info))
		return -EINVAL;
	if (req.count) {
		counters = memdup_user(u64_to_user_ptr(req.counters),
				       SNIC_TUN_COUNTERS * sizeof(*counters));
		if (IS_ERR(counters))
			return PTR_ERR(counters);
	}

	rcu_read_lock();
	priv = rcu_dereference(f->priv);
	if (priv) {
		spin_lock_bh(&priv->pub_lock);
		if (counters) {
			memcpy(priv->pub.counters, counters, sizeof(priv->pub.counters));
			priv->pub.counters_valid = true;
		}
		priv->pub.speed = req.speed;
		priv->pub.duplex = duplex[req.duplex];
		priv->pub.rx_usecs = req.rx_usecs;
		priv->pub.rx_ring = req.rx_ring;
		priv->pub.tx_ring = req.tx_ring;
		priv->pub.ring_max = req.ring_max;
		priv->pub.rx_queues = req.rx_queues;
		priv->pub.tx_queues = req.tx_queues;
		memcpy(priv->pub.fw_version, fw_version, sizeof(fw_version));
		memcpy(priv->pub.bus_info, bus_info, sizeof(bus_info));
		spin_unlock_bh(&priv->pub_lock);
	} else {
		ret = -ENODEV;
	}
	rcu_read_unlock();
	kfree(counters);
	return ret;
}

/* A rule the driver published: values the NIC's steering entry can hold. */
static bool snic_rule_valid(const struct snic_tun_rule *r, u32 location, u32 rx_queues)
{
	return r->location == location && !(r->flags & ~SNIC_RULE_FLAGS) &&
	       r->queue < rx_queues && r->ethertype <= 0xffff && r->ip_proto <= 0xff &&
	       r->dport <= 0xffff && !(r->dmac >> 48);
}

static int snic_ioctl_publish_rules(struct snic_file *f, void __user *uarg)
{
	struct snic_tun_rule_table req;
	struct snic_tun_rule *rules = NULL;
	struct snic_priv *priv;
	struct snic_steer *st;
	u32 i, kept = 0;
	int ret = 0;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags || req.reserved || req.capacity > SNIC_TUN_RULES_MAX ||
	    req.count > req.capacity || !req.rx_queues || req.rx_queues > SNIC_TUN_RX_QUEUES_MAX)
		return -EINVAL;
	if (req.count) {
		rules = memdup_user(u64_to_user_ptr(req.rules), req.count * sizeof(*rules));
		if (IS_ERR(rules))
			return PTR_ERR(rules);
	}
	for (i = 0; i < req.count; i++) {
		if (!snic_rule_valid(&rules[i], i, req.rx_queues)) {
			kfree(rules);
			return -EINVAL;
		}
	}

	rcu_read_lock();
	priv = rcu_dereference(f->priv);
	if (priv) {
		st = &priv->steer;
		spin_lock(&priv->steer_lock);
		st->capacity = req.capacity;
		st->rx_queues = req.rx_queues;
		st->count = req.count;
		if (req.count)
			memcpy(st->view, rules, req.count * sizeof(*rules));
		if (snic_seq_after(req.done, st->taken))
			st->taken = req.done;
		/* What the driver has not handled yet still shows: apply it again. */
		for (i = 0; i < st->nreqs; i++) {
			if (!snic_seq_after(st->reqs[i].seq, req.done))
				continue;
			st->reqs[kept++] = st->reqs[i];
			snic_steer_apply(st, &st->reqs[i]);
		}
		st->nreqs = kept;
		spin_unlock(&priv->steer_lock);
	} else {
		ret = -ENODEV;
	}
	rcu_read_unlock();
	kfree(rules);
	return ret;
}

static int snic_ioctl_take_rule_req(struct snic_file *f, void __user *uarg)
{
	struct snic_tun_rule_req req;
	struct snic_priv *priv;
	struct snic_steer *st;
	u32 i, before = 0;
	int ret = -EAGAIN;

	rcu_read_lock();
	priv = rcu_dereference(f->priv);
	if (!priv) {
		rcu_read_unlock();
		return -ENODEV;
	}
	st = &priv->steer;
	spin_lock(&priv->steer_lock);
	for (i = 0; i < st->nreqs; i++) {
		if (snic_seq_after(st->reqs[i].seq, st->taken)) {
			req = st->reqs[i];
			before = st->taken;
			st->taken = req.seq;
			ret = 0;
			break;
		}
	}
	spin_unlock(&priv->steer_lock);
	rcu_read_unlock();
	if (ret || !copy_to_user(uarg, &req, sizeof(req)))
		return ret;
	/* The driver never saw it: it stays to be taken again. */
	rcu_read_lock();
	priv = rcu_dereference(f->priv);
	if (priv) {
		spin_lock(&priv->steer_lock);
		if (priv->steer.taken == req.seq)
			priv->steer.taken = before;
		spin_unlock(&priv->steer_lock);
	}
	rcu_read_unlock();
	return -EFAULT;
}

static long snic_fop_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct snic_file *f = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	if (cmd == SNIC_TUN_IOC_INFO)
		return snic_ioctl_info(uarg);

	mutex_lock(&f->lock);
	switch (cmd) {
	case SNIC_TUN_IOC_CREATE:
		ret = snic_ioctl_if(f, uarg, true);
		break;
	case SNIC_TUN_IOC_ATTACH:
		ret = snic_ioctl_if(f, uarg, false);
		break;
	case SNIC_TUN_IOC_DESTROY:
		ret = snic_ioctl_destroy(f);
		break;
	case SNIC_TUN_IOC_SETUP_RINGS:
		ret = snic_ioctl_setup_rings(f, uarg);
		break;
	case SNIC_TUN_IOC_SET_CARRIER:
		ret = snic_ioctl_set_carrier(f, uarg);
		break;
	case SNIC_TUN_IOC_KICK:
		ret = snic_ioctl_kick(f);
		break;
	case SNIC_TUN_IOC_GET_CONFIG:
		ret = snic_ioctl_get_config(f, uarg);
		break;
	case SNIC_TUN_IOC_PUBLISH:
		ret = snic_ioctl_publish(f, uarg);
		break;
	case SNIC_TUN_IOC_PUBLISH_RULES:
		ret = snic_ioctl_publish_rules(f, uarg);
		break;
	case SNIC_TUN_IOC_TAKE_RULE_REQ:
		ret = snic_ioctl_take_rule_req(f, uarg);
		break;
	default:
		ret = -ENOTTY;
	}
	mutex_unlock(&f->lock);
	return ret;
}

/* ------------------------------------------------------------------------
 * /dev/splitnic
 */

static int snic_fop_open(struct inode *inode, struct file *file)
{
	struct snic_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	mutex_init(&f->lock);
	init_waitqueue_head(&f->wq);
	file->private_data = f;
	return 0;
}

static int snic_fop_release(struct inode *inode, struct file *file)
{
	struct snic_file *f = file->private_data;

	rtnl_lock();
	snic_detach(f);
	rtnl_unlock();
	if (f->rings) {
		vfree(f->rings->area);
		kfree(f->rings);
	}
	mutex_destroy(&f->lock);
	kfree(f);
	return 0;
}

/*
 * The driver is whoever maps the area: when the last mapping goes (the
 * driver died or unmapped it), no frame moves any more, so the carrier goes
 * off even while a copy of the handle lives on (fork(), fd passing).  The
 * mapping is VM_DONTCOPY: a child the driver forked does not count.
 */
static void snic_vm_open(struct vm_area_struct *vma)
{
	struct snic_file *f = vma->vm_file->private_data;

	atomic_inc(&f->mappings);
}

static void snic_vm_close(struct vm_area_struct *vma)
{
	struct snic_file *f = vma->vm_file->private_data;
	struct snic_priv *priv;

	if (!atomic_dec_and_test(&f->mappings))
		return;
	/* Under the mmap lock: no RTNL here (ioctls fault user pages under RTNL). */
	rcu_read_lock();
	priv = rcu_dereference(f->priv);
	if (priv)
		netif_carrier_off(priv->ndev);
	rcu_read_unlock();
}

static const struct vm_operations_struct snic_vm_ops = {
	.open = snic_vm_open,
	.close = snic_vm_close,
};

static int snic_fop_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct snic_file *f = file->private_data;
	struct snic_rings *r;
	size_t off;
	int ret;

	/*
	 * No f->lock here: the mmap lock is held, and ioctls fault user pages
	 * under f->lock.  Pairs with the release in snic_ioctl_setup_rings().
	 */
	r = smp_load_acquire(&f->rings);

	if (!r)
		return -ENXIO;
	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != r->area_size ||
	    !(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	/* Data, never code: no PROT_EXEC now, and no mprotect() to it later. */
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	/* Not copied to a child, never grown by mremap(), not in core dumps. */
#if KERNEL_VERSION(6, 3, 0) <= LINUX_VERSION_CODE
	vm_flags_mod(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP, VM_MAYEXEC);
#else
	vma->vm_flags = (vma->vm_flags | VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP) & ~VM_MAYEXEC;
#endif
	for (off = 0; off < r->area_size; off += PAGE_SIZE) {
		ret = vm_insert_page(vma, vma->vm_start + off, vmalloc_to_page(r->area + off));
		if (ret)
			return ret;
	}
	vma->vm_ops = &snic_vm_ops;
	snic_vm_open(vma);
	return 0;
}

static __poll_t snic_fop_poll(struct file *file, poll_table *wait)
{
	struct snic_file *f = file->private_data;
	struct snic_priv *priv;
	struct snic_rings *r;
	__poll_t mask = 0;

	poll_wait(file, &f->wq, wait);
	/*
	 * As sock_poll_wait(): our entry on the wait queue is visible before we
	 * read the state below.  Pairs with the barrier in wq_has_sleeper() of
	 * every waker (configuration, u2k room, k2u frames): either it sees us
	 * waiting, or we see what it changed; never neither.
	 */
	smp_mb();
	/* Pairs with the release in snic_ioctl_setup_rings(). */
	r = smp_load_acquire(&f->rings);
	rcu_read_lock();
	priv = rcu_dereference(f->priv);
	if (!priv && !r)
		mask |= EPOLLERR;
	else if (!priv)
		mask |= EPOLLHUP;
	else if (atomic_read(&priv->cfg_gen) != READ_ONCE(f->cfg_seen))
		mask |= EPOLLPRI;
	if (priv && r)
		snic_tx_wake(priv);
	rcu_read_unlock();
	if (!r)
		return mask;
	if (READ_ONCE(r->k2u_head) != READ_ONCE(*r->k2u_cons))
		mask |= EPOLLIN | EPOLLRDNORM;
	if (READ_ONCE(*r->u2k_prod) - READ_ONCE(r->u2k_tail) <= r->u2k_mask)
		mask |= EPOLLOUT | EPOLLWRNORM;
	return mask;
}

static const struct file_operations snic_fops = {
	.owner = THIS_MODULE,
	.open = snic_fop_open,
	.release = snic_fop_release,
	.unlocked_ioctl = snic_fop_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = snic_fop_mmap,
	.poll = snic_fop_poll,
	.llseek = noop_llseek,
};

static struct miscdevice snic_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = KBUILD_MODNAME,
	.fops = &snic_fops,
	.mode = 0600,
};

static int __init snic_init(void)
{
	int ret;

	BUILD_BUG_ON(sizeof(struct snic_tun_info) != SNIC_TUN_INFO_SIZE);
	BUILD_BUG_ON(sizeof(struct snic_tun_if_req) != SNIC_TUN_IF_REQ_SIZE);
	BUILD_BUG_ON(sizeof(struct snic_tun_ring_req) != SNIC_TUN_RING_REQ_SIZE);
	BUILD_BUG_ON(sizeof(struct snic_tun_desc) != SNIC_TUN_DESC_SIZE);
	BUILD_BUG_ON(sizeof(struct snic_tun_config) != SNIC_TUN_CONFIG_SIZE);
	BUILD_BUG_ON(sizeof(struct snic_tun_publish) != SNIC_TUN_PUBLISH_SIZE);
	BUILD_BUG_ON(SNIC_TUN_CTRL_SIZE != PAGE_SIZE || SNIC_TUN_AREA_ALIGN != PAGE_SIZE);
	BUILD_BUG_ON(SNIC_TUN_MTU_DEFAULT + SNIC_TUN_FRAME_OVERHEAD > SNIC_TUN_SLOT_SIZE_MIN);

	ret = rtnl_link_register(&snic_link_ops);
	if (ret)
		return ret;
	ret = misc_register(&snic_misc);
	if (ret) {
		rtnl_link_unregister(&snic_link_ops);
		return ret;
	}
	pr_info("/dev/%s ready, uapi %u.%u (spec %08x, NIC spec %08x)\n",
		KBUILD_MODNAME, SNIC_TUN_VERSION >> 16, SNIC_TUN_VERSION & 0xffff,
		SNIC_TUN_SPEC_HASH, SNIC_SPEC_HASH);
	return 0;
}

static void __exit snic_exit(void)
{
	/* No handle is open: each one holds a module reference. */
	misc_deregister(&snic_misc);
	/* Removes every splitnic interface, in every network namespace. */
	rtnl_link_unregister(&snic_link_ops);
}

module_init(snic_init);
module_exit(snic_exit);

MODULE_DESCRIPTION("splitnic stub: a network interface tunnelled through a user-space driver");
MODULE_AUTHOR("splitnic developers");
MODULE_LICENSE("GPL");
