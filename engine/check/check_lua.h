/* check_lua.h — what the rest of the Lua face may use of check/'s: the one
 * way a verdict becomes a Lua table, the checked handle of a
 * "synod.History" userdata and a fresh "synod.KVHistory". Implemented in
 * lua/lua_check.c (which also adds synod.history{…} through
 * synL_open_history, declared in lua/synl.h), synL_push_kvhistory in
 * lua/lua_lin.c. */
#ifndef SYN_CHECK_LUA_H
#define SYN_CHECK_LUA_H

#include <lua.h>
#include <lauxlib.h>

#include "check.h"
#include "lin.h"

/* Pushes a copy of v as {ok=, checker=, explain=, node_a=, node_b=, pos_a=,
 * pos_b=}; fields that are -1 in v (not applicable) are left nil. Nodes are
 * 0-based ids, positions 1-based log indexes. The table's metatable gives
 * it a __tostring. [-0, +1] */
void synL_push_verdict(lua_State *L, const syn_verdict_t *v);

/* The history behind argument arg (a "synod.History"); raises an argument
 * error when arg is something else, or an error when it has been closed.
 * [-0, +0] */
syn_history_t *synL_checkhistory(lua_State *L, int arg);

/* Pushes node's delivery log as a list of {seq=, origin=, ts=, value=, at=}
 * (copies). node < h->n + h->clients. [-0, +1] */
void synL_push_deliveries(lua_State *L, const syn_history_t *h, uint32_t node);

/* Pushes a new, empty, open "synod.KVHistory" (synod.kv_history()) and
 * returns its history for the caller to fill; it is freed by the
 * userdata's __gc / __close. synL_open_lin must have run. [-0, +1] */
syn_lin_history_t *synL_push_kvhistory(lua_State *L);

#endif
