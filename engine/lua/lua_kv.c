/* lua_kv.c — the Lua face of the key-value app (app/kv.c): synod.kv(). */
#include "synl.h"

void synL_open_kv(lua_State *L) { (void)L; }
