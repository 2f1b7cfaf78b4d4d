/*
 * client: a small blocking msgpack-RPC client over one stream socket.
 *
 * matchctl and the tests use it to talk to matchd: connect, send requests
 * (pipelined: many may be in flight), receive responses and notifications
 * in the order the server writes them, match them by msgid.  Plain
 * blocking sockets with poll(2) for timeouts; while a request is being
 * written the client also reads whatever the server sends, so a pipelined
 * sender never deadlocks against a server that writes responses while it
 * reads.  One struct client belongs to one thread.
 */
#ifndef MATCHD_CLIENT_H
#define MATCHD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

struct client;

/*
 * Largest response or notification accepted, in bytes.  The daemon's own
 * request limit is 16 MiB; a page of 1000 exported records stays far below
 * this.
 */
#define CLIENT_FRAME_BYTES_MAX_DEFAULT (64u << 20)
#define CLIENT_TIMEOUT_MS_DEFAULT 60000

struct client_opts {
	/* Longest wait for the socket to become readable or writable; 0 or
	 * less waits for ever. */
	int timeout_ms;
	/* Frames larger than this fail the connection with -EMSGSIZE. */
	size_t frame_bytes_max;
};

/* Fills opts with the defaults above. */
void client_opts_default(struct client_opts *opts);

/*
 * Connects to addr, which is "HOST:PORT" ("127.0.0.1:7411", "[::1]:7411",
 * "localhost:7411") or the path of a Unix socket (anything containing a
 * '/').  opts may be NULL for the defaults.  Blocks for name resolution
 * and the connect, the latter bounded by timeout_ms.  Returns 0 with *out
 * set, -EINVAL for a malformed addr, -ENOENT when the host does not
 * resolve, -ENOMEM, or the connect's -errno.
 */
int client_connect(const char *addr, const struct client_opts *opts,
		   struct client **out);

/*
 * Wraps an already connected stream socket fd (a socketpair end in the
 * tests).  Takes ownership of fd, also on failure.  Returns 0 or -ENOMEM.
 */
int client_open_fd(int fd, const struct client_opts *opts,
		   struct client **out);

/* Closes the socket and frees everything; c may be NULL. */
void client_close(struct client *c);

/*
 * Words on the last failure ("response is not a msgpack-RPC message",
 * "connection closed by the server"), or "" when there was none.  Valid
 * until the next call on c.
 */
const char *client_detail(const struct client *c);

/*
 * Sends the request [0, msgid, method, params].  params/params_len is the
 * already packed params array ("[{...}]"); NULL sends "[]".  Blocks until
 * every byte is written (bounded by timeout_ms per wait), reading any
 * bytes the server sends meanwhile into the receive buffer.  Sets *msgid
 * (may be NULL).  Returns 0 or -errno: -ETIMEDOUT, -EPIPE or -ECONNRESET
 * when the server went away, -EPROTO or -EMSGSIZE for a bad frame read
 * meanwhile.  After a failure every later call returns the same code.
 */
int client_send(struct client *c, const char *method, const void *params,
		size_t params_len, uint32_t *msgid);

enum client_msg_type {
	CLIENT_RESPONSE = 1,
	CLIENT_NOTIFICATION = 2,
};

/*
 * One message from the server.  Every pointer points into memory the
 * client owns, valid until the next client_recv, client_call or
 * client_close on the same client.
 */
struct client_msg {
	enum client_msg_type type;
	/* Responses: */
	uint32_t msgid;
	const msgpack_object *error;  /* NULL when the call succeeded */
	const msgpack_object *result; /* never NULL; nil on error */
	/* Notifications: */
	const char *method;           /* not NUL-terminated */
	size_t method_len;
	const msgpack_object *params;
};

/*
 * Blocks until the next response or notification is read.  Returns 0, or
 * -errno: -ETIMEDOUT, -ECONNRESET (the server closed the connection),
 * -EPROTO (bytes that are not msgpack, or a message that is not a
 * msgpack-RPC response or notification), -EMSGSIZE, -ENOMEM.
 */
int client_recv(struct client *c, struct client_msg *msg);

/*
 * Sends one request and waits for its response, skipping notifications.
 * Meant for a connection with nothing else in flight: a response with
 * another msgid fails with -EPROTO.  An error answer from the server is
 * not a failure here: it returns 0 with msg->error set.
 */
int client_call(struct client *c, const char *method, const void *params,
		size_t params_len, struct client_msg *msg);

/* Lengths include room for the terminating NUL. */
#define CLIENT_ERROR_CODE_MAX 32
#define CLIENT_ERROR_MESSAGE_MAX 256
#define CLIENT_ERROR_FIELD_MAX 128

/* A msgpack-RPC error object, copied out as C strings. */
struct client_error {
	char code[CLIENT_ERROR_CODE_MAX];
	char message[CLIENT_ERROR_MESSAGE_MAX];
	char field[CLIENT_ERROR_FIELD_MAX];   /* "" when none was given */
};

/*
 * Reads an error object: the map {code, message, field?} of PROTOCOL.md.
 * Other servers' shapes are read too: a bare string becomes the message
 * with code "error", anything else is described in the message.  Long
 * texts are truncated.  Never fails.
 */
void client_error_read(const msgpack_object *error, struct client_error *out);

/*
 * Says hello with token (may be NULL) and client name (may be NULL).
 * Returns 0; -EACCES when the server answered with an error, copied into
 * *err; or a transport failure as client_call.
 */
int client_hello(struct client *c, const char *token, const char *name,
		 struct client_error *err);

/* The value under key in map, or NULL when obj is not a map or lacks it.
 * Keys may be str or bin. */
const msgpack_object *client_map_get(const msgpack_object *map,
				     const char *key);

/* True when o is a str or bin; sets *s (not NUL-terminated) and *len. */
bool client_obj_str(const msgpack_object *o, const char **s, size_t *len);

#endif
