/* synl.h — the C side of the `synod` Lua module. Each engine room that has a
 * Lua face adds it through one synL_open_* function; lua/module.c calls them
 * all. Conventions (STYLE.md): synL_ prefix, argument errors raised with
 * luaL_argerror / luaL_error naming the function and argument, every value
 * handed to Lua is a copy or a checked handle, every C→Lua call goes
 * through synL_pcall. */
#ifndef SYN_SYNL_H
#define SYN_SYNL_H

#include <lua.h>
#include <lauxlib.h>

#include "../base/base.h"
#include "../wire/wire.h"
#include "../node/node.h"

/* Each synL_open_* is called with the module table on top of the stack; it
 * sets its functions/sub-tables into it and leaves the stack as it was. */
void synL_open_wire(lua_State *L);     /* synod.wire.*, synod.crypto.*, synod.bench_crypto/wire */
void synL_open_history(lua_State *L);  /* synod.history{…} and its checkers */
void synL_open_sim(lua_State *L);      /* synod.sim{…}, synod.dist.*, nodes, behaviours */
void synL_open_sandbox(lua_State *L);  /* synod.sandbox, synod.data, synod.time */
void synL_open_kv(lua_State *L);       /* synod.kv(): the replicated key-value app (lua_kv.c) */
void synL_open_lin(lua_State *L);      /* synod.kv_history(): linearizability (lua_lin.c) */
void synL_open_live(lua_State *L);     /* synod.live: frame stream and handshake (lua_live.c) */
void synL_open_store(lua_State *L);    /* synod.live.store: a node's durable record store (lua_store.c) */
void synL_open_http(lua_State *L);     /* synod.live.http_parse/json/http_selftest (lua_http.c) */

/* Calls the function below nargs arguments in protected mode with a
 * traceback handler. On error returns the Lua status and leaves the message
 * (with traceback, prefixed by what) on the stack; otherwise 0 and the
 * nresults results. budget > 0 stops the call with an error after that many
 * VM instructions (the runaway-hook guard). */
int synL_pcall(lua_State *L, int nargs, int nresults, const char *what, int budget);

/* The PRNG of the simulation whose hook, callback or stop function is
 * running, or NULL when none is (lua_sim.c). */
syn_prng_t *synL_current_prng(void);
/* Lua's random() contract over p: no argument → [0,1); m → [1,m]; m, n →
 * [m,n]; arguments start at stack index arg. [-0, +1] */
int synL_random(lua_State *L, syn_prng_t *p, int arg);

/* Reads the message table at idx into out (lua_wire.c). With def given the
 * table's proto/type must agree with it; otherwise they pick the type (proto
 * defaulting to default_proto). BYTES fields view the table's strings, valid
 * while the table is reachable. Errors name argument arg, or (arg 0) the
 * message. Returns the type. */
const syn_msg_def_t *synL_check_msg(lua_State *L, int idx, int arg, const syn_msg_def_t *def,
                                    const char *default_proto, syn_msg_t *out);
/* Pushes m as a synod.Msg table (copies of every field). */
void synL_push_msg(lua_State *L, const syn_msg_t *m);

/* A time argument: integer nanoseconds or a string like "5ms". */
int64_t synL_checktime(lua_State *L, int arg);
int64_t synL_opttime(lua_State *L, int arg, int64_t def);
/* Reads t[key] as a time, or def when absent; errors name the key. */
int64_t synL_fieldtime(lua_State *L, int t, const char *key, int64_t def, const char *fname);

/* ---- the behaviour bridge (behave.c) ----
 * One per node that may carry a behaviour. The owner (a simulation, a live
 * node) says which thread hooks run on, which node they drive, what the
 * hook's first argument is, what to do around each call, and the budget. */
typedef struct synL_behav synL_behav_t;
typedef struct {
  lua_State *(*thread)(synL_behav_t *b);
  syn_node_t *(*node)(synL_behav_t *b);
  void (*push_node)(lua_State *T, synL_behav_t *b);   /* the hooks' `node` argument */
  void *(*enter)(synL_behav_t *b);                    /* optional: before a hook call */
  void (*leave)(synL_behav_t *b, void *token);        /* optional: after it, with enter's token */
  int (*budget)(synL_behav_t *b);                     /* VM instructions per hook call */
} synL_behav_ops_t;
struct synL_behav {
  const synL_behav_ops_t *ops;
  void *owner;
  uint32_t id;
  int ref;                 /* registry: the behaviour's hook table */
  syn_buf_t scratch;       /* on_receive's rewritten message lives here */
  uint32_t errors;         /* hook errors seen, for logging only */
};
void synL_behav_init(synL_behav_t *b, const synL_behav_ops_t *ops, void *owner, uint32_t id);
void synL_behav_free(synL_behav_t *b);
/* node:behave's body: installs the hook table at idx (nil removes the
 * behaviour). Raises on a malformed table; true when one was installed. */
bool synL_behave(lua_State *L, int idx, synL_behav_t *b);
/* Views of a node both runtimes show (each pushes one value, returns 1). */
int synL_push_node_frame(lua_State *L, syn_node_t *node, int msg);   /* the signed frame for msg at index msg */
int synL_push_node_counters(lua_State *L, syn_node_t *node);          /* sent, received, dropped, rejected … */
int synL_push_node_evidence(lua_State *L, syn_node_t *node);          /* a list of {against, reason, round, a, b …} */
/* node:send / node:replay bodies; `to` already checked by the caller. Return 0. */
int synL_node_send(lua_State *L, syn_node_t *node, uint32_t to, int msg);      /* msg, then an optional delay */
int synL_node_replay(lua_State *L, syn_node_t *node, uint32_t to, int frame);  /* frame bytes, then an optional delay */

#endif
