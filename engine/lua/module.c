/* module.c — luaopen_synod: assembles the `synod` module from each room's
 * synL_open_* function. The same code is linked into ./synod (preloaded)
 * and ./synod.so (for stock lua5.4 and busted). */
#include "synl.h"
#include "../crypto/crypto.h"


__attribute__((visibility("default"))) int luaopen_synod(lua_State *L) {
  if (syn_crypto_init() != 0) return luaL_error(L, "synod: libsodium failed to initialise");
  lua_newtable(L);
  lua_pushliteral(L, SYN_VERSION);
  lua_setfield(L, -2, "version");
  synL_open_sandbox(L);
  synL_open_wire(L);
  synL_open_history(L);
  synL_open_sim(L);
  synL_open_kv(L);
  synL_open_lin(L);
  synL_open_live(L);
  synL_open_store(L);
  synL_open_http(L);
  return 1;
}
