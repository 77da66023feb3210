/* repl.h — a Lua REPL inside a live node, over a Unix socket in its data
 * directory (repl.sock, mode 0600 in a 0700 directory: only its owner can
 * connect). Each chunk runs inside the node's event loop with `node` bound
 * to the node (status, peers, log, behave, send, frame, replay, counters,
 * evidence, submit; node.sim:now/after/random for behaviours), `print`
 * routed back to the client, and an instruction budget, so a runaway
 * expression is stopped and the node keeps serving its peers.
 *
 * Wire: the client sends each chunk as a length-prefixed unit (stream.h);
 * the node answers with units of kind byte ‖ text: 'o' output, 'e' an error
 * (with traceback), 'i' incomplete (send the chunk again with more lines),
 * 'd' done ("0" ok, "1" failed). */
#ifndef SYN_REPL_H
#define SYN_REPL_H

#include <lua.h>

#include "runtime.h"

typedef struct syn_repl syn_repl_t;

/* Listens on DATA/repl.sock with L (the synod module loaded) as the REPL's
 * state. A socket a running node answers on is an error; a stale one is
 * replaced. On an error after the listener was opened, *out is set to a
 * closed REPL: free it after the loop has run. */
int syn_repl_new(syn_repl_t **out, syn_live_t *lv, lua_State *L, char *err, size_t errlen);
const char *syn_repl_path(const syn_repl_t *r);
/* Closes the listener and sessions, removes the socket and any behaviour. */
void syn_repl_close(syn_repl_t *r);
void syn_repl_free(syn_repl_t *r);

/* How a value is shown (a Lua chunk returning show(v)); main's REPL uses it too. */
extern const char syn_repl_show_src[];

/* The client side (synod attach): connects to PATH (the socket, or a data
 * directory holding repl.sock); -1 with err set on failure. */
int syn_repl_connect(const char *path, char *err, size_t errlen);
typedef void (*syn_repl_out_fn)(void *ctx, char kind, const char *text, size_t len);
/* Sends one chunk, passes output and errors to out; returns 0 ok, 1 failed,
 * 2 incomplete, -2 the connection broke. */
int syn_repl_eval(int fd, const char *chunk, size_t len, syn_repl_out_fn out, void *ctx);

#endif
