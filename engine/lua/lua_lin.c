/* lua_lin.c — the Lua face of the linearizability checker: synod.kv_history(). */
#include "synl.h"

void synL_open_lin(lua_State *L) { (void)L; }
