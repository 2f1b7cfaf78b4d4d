/*
 * net: the io_uring network threads.
 *
 * Each thread owns one ring, one listening socket (SO_REUSEPORT spreads
 * new connections over the threads), one provided-buffer ring for
 * receives, and the connections it accepted, for their whole life.  A
 * connection's bytes go through the frame scanner (limits) into msgpack-c's
 * streaming unpacker, and each complete object to rpc_handle().  Replies
 * are packed into the connection's output and sent with partial writes
 * handled.
 *
 * Bounds: a connection whose unsent output passes out_bytes_max, or that
 * has deferred_max requests waiting for the store, stops being read until
 * it drains; if its output makes no progress for stall_timeout_s it is
 * dropped.  Connections beyond conns_max are closed at accept.  A
 * connection with nothing in flight for idle_timeout_s is closed.
 */
#ifndef MATCHD_NET_H
#define MATCHD_NET_H

#include <stddef.h>
#include <stdint.h>

struct rpc_server;
struct store;

struct net_config {
	const char *host;          /* numeric or name; default 127.0.0.1 */
	const char *port;          /* default "7411" */
	unsigned threads;          /* default: the number of cores */
	unsigned conns_max;        /* over all threads */
	unsigned idle_timeout_s;
	unsigned stall_timeout_s;
	unsigned shutdown_timeout_s; /* in-flight work gets this long */
	size_t out_bytes_max;      /* unsent output per connection */
	uint32_t deferred_max;     /* waiting requests per connection */
	size_t message_bytes_max;
	uint32_t depth_max;
};

void net_config_default(struct net_config *cfg);

struct net;

/*
 * Binds, creates the rpc workers (with a store reader each) and starts the
 * threads.  Returns 0 or -errno with a sentence in errbuf.
 */
int net_start(struct net **out, const struct net_config *cfg,
	      struct rpc_server *srv, struct store *store, char *errbuf,
	      size_t errbuf_len);

/*
 * Stops accepting, stops reading, answers what was already received
 * (including writes waiting for their commit), closes every connection and
 * joins the threads.  Blocks up to shutdown_timeout_s; then connections
 * that still hold output are dropped.  Call once, then net_free().
 */
void net_shutdown(struct net *net);
void net_free(struct net *net);

#endif
