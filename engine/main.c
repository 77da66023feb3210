/* main.c — the `synod` command: run a scenario, write keys, or open a Lua
 * REPL with the synod module loaded. Argument parsing and process exit codes
 * live here; everything else is a call into the engine or the module. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
#include <editline/readline.h>

#include <signal.h>
#include <uv.h>

#include "base/base.h"
#include "crypto/crypto.h"
#include "live/api.h"
#include "live/bench.h"
#include "live/cluster.h"
#include "live/console.h"
#include "live/repl.h"
#include "live/runtime.h"
#include "lua/synl.h"

int luaopen_synod(lua_State *L);

static const char usage[] =
  "usage: synod [--log-level LEVEL] COMMAND [ARGS]\n"
  "\n"
  "commands:\n"
  "  run FILE.lua [--seed N] [-- ARGS...]   run a scenario script in the sandbox;\n"
  "                                         exits 0 when its verdict is ok, 1 when not,\n"
  "                                         2 when the script fails\n"
  "  keygen --out DIR -n N [--seed S]       write N Ed25519 key pairs (node-<i>.key, 0600)\n"
  "                                         and DIR/keys.pub; --seed makes them deterministic\n"
  "  node -p PORT -i ID -n N [OPTIONS]      run a live node (synod node --help for its options)\n"
  "  attach PATH                            a Lua REPL inside a running node (PATH: its\n"
  "                                         repl.sock or data directory)\n"
  "  cluster up|status|submit|kill|restart|down [--dir DIR]\n"
  "                                         a local cluster of node processes (synod cluster help)\n"
  "  bench [--clients 1,16,64] [--batch 1,100] [--seconds S]\n"
  "                                         closed-loop clients against a local 4-node PBFT cluster\n"
  "  version                                print the version\n"
  "  help                                   this text\n"
  "  (none)                                 a Lua REPL with `synod` loaded\n"
  "\n"
  "options:\n"
  "  --log-level LEVEL   trace, debug, info, warn (default), error or off\n"
  "\n"
  "examples:\n"
  "  synod run scenarios/tom_basic.lua --seed 42\n"
  "  synod keygen --out keys -n 4 --seed 1\n"
  "  synod node -p 8000 -i 0 -n 4 --keys keys\n";

static const char node_usage[] =
  "usage: synod node -p PORT -i ID -n N [OPTIONS]\n"
  "\n"
  "Runs member ID of an N-member cluster as a live process. Peers find each other\n"
  "through a bootstrap peer: start one node without -b, give the others -b HOST:PORT.\n"
  "\n"
  "options:\n"
  "  -p, --port PORT        listen for peers on PORT (0: any free port)\n"
  "  -i, --id ID            this node's id, 0..N-1\n"
  "  -n N                   members in the cluster\n"
  "  -b, --bootstrap H:P    a running peer to learn the other peers' addresses from\n"
  "  --protocol P           pbft (default) or tom\n"
  "  --keys DIR             keys.pub and node-ID.key from 'synod keygen' (default: development\n"
  "                         keys derived from seed 0, with a warning: for trying things only)\n"
  "  --data DIR             this node's data directory (default data/node-ID), created 0700\n"
  "  --listen HOST          the address to listen on (default 127.0.0.1)\n"
  "  --http PORT            serve the HTTP admin API on 127.0.0.1:PORT (0: any free port)\n"
  "  --http-listen HOST     the address for HTTP (default 127.0.0.1)\n"
  "  --http-token T         every HTTP request needs 'Authorization: Bearer T'\n"
  "                         (or set SYNOD_HTTP_TOKEN)\n"
  "  --clients C            pbft: client nodes this process hosts for submissions (default 1)\n"
  "  --param NAME=VALUE     a protocol parameter (repeatable), e.g. --param batch_size=100\n"
  "  --words N              tom: multicast N words, then only deliver (default: until stopped)\n"
  "  --rate R               tom: words per second, Poisson arrivals (default 5)\n"
  "  --quiet                no progress lines\n"
  "  --log-level LEVEL      trace, debug, info, warn (default), error or off\n"
  "\n"
  "On a terminal the node offers a console (type 'help'). SIGINT and SIGTERM stop it\n"
  "cleanly (exit 0).\n";

static int fail_usage(const char *fmt, const char *arg) {
  fprintf(stderr, "synod: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'synod help' for usage)\n");
  return 2;
}

static bool parse_u64(const char *s, uint64_t *out) {
  if (s == NULL || *s == '\0' || *s == '-') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end) return false;
  *out = v;
  return true;
}

/* A fresh interpreter with the standard libraries and `synod` preloaded. */
static lua_State *new_state(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) { fprintf(stderr, "synod: cannot create a Lua state\n"); exit(2); }
  luaL_openlibs(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, luaopen_synod);
  lua_setfield(L, -2, "synod");
  lua_pop(L, 1);
  luaL_requiref(L, "synod", luaopen_synod, 1);
  lua_pop(L, 1);
  return L;
}

static int cmd_run(int argc, char **argv) {
  const char *file = NULL;
  uint64_t seed = 0;
  bool has_seed = false;
  int rest = argc;
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) { rest = i + 1; break; }
    if (strcmp(argv[i], "--seed") == 0) {
      if (i + 1 >= argc || !parse_u64(argv[i + 1], &seed)) return fail_usage("--seed needs a non-negative integer, got '%s'", i + 1 < argc ? argv[i + 1] : "");
      has_seed = true; i++;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      return fail_usage("run: unknown option '%s'", argv[i]);
    } else if (file == NULL) {
      file = argv[i];
    } else {
      rest = i; break;   /* extra words pass to the script too */
    }
  }
  if (file == NULL) return fail_usage("run needs a script: synod run FILE.lua%s", "");
  if (access(file, R_OK) != 0) return fail_usage("cannot read script '%s'", file);
  lua_State *L = new_state();
  lua_getglobal(L, "synod");
  lua_newtable(L);
  if (has_seed) { lua_pushinteger(L, (lua_Integer)seed); lua_setfield(L, -2, "seed"); }
  for (int i = rest, k = 1; i < argc; i++, k++) { lua_pushstring(L, argv[i]); lua_rawseti(L, -2, k); }
  lua_setfield(L, -2, "args");
  lua_getfield(L, -1, "sandbox");
  lua_getfield(L, -1, "loadfile");
  lua_pushstring(L, file);
  int status;
  lua_call(L, 1, 2);                      /* loadfile: function, or nil and the syntax error */
  if (lua_isnil(L, -2)) {
    fprintf(stderr, "synod: %s\n", lua_tostring(L, -1));
    status = 2;
  } else if (lua_pop(L, 1), synL_pcall(L, 0, 1, NULL, 0) != LUA_OK) {
    fprintf(stderr, "synod: %s\n", lua_tostring(L, -1));
    status = 2;
  } else if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "ok");
    status = lua_toboolean(L, -1) ? 0 : 1;
  } else {
    status = (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) ? 1 : 0;
  }
  lua_close(L);
  return status;
}

static int cmd_keygen(int argc, char **argv) {
  const char *out = NULL;
  uint64_t n = 0, seed = 0;
  bool has_seed = false;
  for (int i = 0; i < argc; i++) {
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(argv[i], "--out") == 0 && next) { out = next; i++; }
    else if (strcmp(argv[i], "-n") == 0 && next) {
      if (!parse_u64(next, &n) || n == 0 || n > SYN_MAX_NODES) return fail_usage("keygen: -n must be 1..256, got '%s'", next);
      i++;
    } else if (strcmp(argv[i], "--seed") == 0 && next) {
      if (!parse_u64(next, &seed)) return fail_usage("keygen: --seed needs a non-negative integer, got '%s'", next);
      has_seed = true; i++;
    } else return fail_usage("keygen: unexpected argument '%s'", argv[i]);
  }
  if (out == NULL || n == 0) return fail_usage("keygen needs --out DIR and -n N%s", "");
  int rc = syn_crypto_init();
  if (rc == 0) rc = syn_keys_write(out, (uint32_t)n, has_seed, seed);
  if (rc) {
    const char *why = syn_keys_error();
    fprintf(stderr, "synod: keygen into '%s' failed: %s\n", out, why[0] ? why : syn_strerror(rc));
    return 1;
  }
  printf("wrote %llu key pairs to %s (public keys: %s/keys.pub)\n", (unsigned long long)n, out, out);
  return 0;
}

/* ---- synod node ---- */

static bool parse_hostport(const char *s, char *host, size_t cap, uint16_t *port) {
  const char *colon = strrchr(s, ':');
  uint64_t p;
  if (colon == NULL || colon == s || (size_t)(colon - s) >= cap || !parse_u64(colon + 1, &p) || p == 0 || p > 65535)
    return false;
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  *port = (uint16_t)p;
  return true;
}

typedef struct { syn_repl_t *repl; syn_api_t *api; } services_t;

static void node_stopped(void *ctx) {
  services_t *sv = ctx;
  syn_console_stop();
  syn_repl_close(sv->repl);
  syn_api_close(sv->api);
}

/* A service failed to start: say why, close what was opened, exit 1. */
static int node_abort(uv_loop_t *loop, syn_live_t *lv, syn_repl_t *repl, lua_State *L, uint32_t id, const char *err) {
  fprintf(stderr, "synod: node %u: %s\n", id, err);
  syn_repl_close(repl);
  syn_live_stop(lv);
  uv_run(loop, UV_RUN_DEFAULT);
  syn_live_free(lv);
  syn_repl_free(repl);
  lua_close(L);
  uv_loop_close(loop);
  return 1;
}

static int cmd_node(int argc, char **argv) {
  syn_live_cfg_t cfg = { .proto = "pbft", .listen_host = "127.0.0.1" };
  uint64_t v;
  bool has_port = false, has_id = false, has_n = false;
  int nparams = 0, http_port = -1;
  const char *http_host = "127.0.0.1", *http_token = getenv("SYNOD_HTTP_TOKEN");
  char boot_host[SYN_MAX_HOST_BYTES], data_dir[4096];
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED() do { if (next == NULL) return fail_usage("node: %s needs a value", a); i++; } while (0)
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) { fputs(node_usage, stdout); return 0; }
    else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
      NEED(); if (!parse_u64(next, &v) || v > 65535) return fail_usage("node: -p must be a port 0..65535, got '%s'", next);
      cfg.port = (uint16_t)v; has_port = true;
    } else if (strcmp(a, "-i") == 0 || strcmp(a, "--id") == 0) {
      NEED(); if (!parse_u64(next, &v) || v >= SYN_MAX_NODES) return fail_usage("node: -i must be a node id, got '%s'", next);
      cfg.id = (uint32_t)v; has_id = true;
    } else if (strcmp(a, "-n") == 0) {
      NEED(); if (!parse_u64(next, &v) || v == 0 || v > SYN_MAX_NODES) return fail_usage("node: -n must be 1..256, got '%s'", next);
      cfg.n = (uint32_t)v; has_n = true;
    } else if (strcmp(a, "-b") == 0 || strcmp(a, "--bootstrap") == 0) {
      NEED(); if (!parse_hostport(next, boot_host, sizeof boot_host, &cfg.bootstrap_port))
        return fail_usage("node: -b wants HOST:PORT, e.g. 127.0.0.1:8000, got '%s'", next);
      cfg.bootstrap_host = boot_host;
    } else if (strcmp(a, "--protocol") == 0) {
      NEED(); if (strcmp(next, "pbft") != 0 && strcmp(next, "tom") != 0) return fail_usage("node: --protocol must be pbft or tom, got '%s'", next);
      cfg.proto = next;
    } else if (strcmp(a, "--http") == 0) {
      NEED(); if (!parse_u64(next, &v) || v > 65535) return fail_usage("node: --http must be a port 0..65535, got '%s'", next);
      http_port = (int)v;
    } else if (strcmp(a, "--http-listen") == 0) { NEED(); http_host = next; }
    else if (strcmp(a, "--http-token") == 0) { NEED(); http_token = next; }
    else if (strcmp(a, "--keys") == 0) { NEED(); cfg.keys_dir = next; }
    else if (strcmp(a, "--data") == 0) { NEED(); cfg.data_dir = next; }
    else if (strcmp(a, "--listen") == 0) { NEED(); cfg.listen_host = next; }
    else if (strcmp(a, "--clients") == 0) {
      NEED(); if (!parse_u64(next, &v) || v == 0 || v > SYN_MAX_LIVE_CLIENTS) return fail_usage("node: --clients must be 1..64, got '%s'", next);
      cfg.clients_per_node = (uint32_t)v;
    } else if (strcmp(a, "--param") == 0) {
      NEED(); if (nparams >= SYN_MAX_PARAMS - 1) return fail_usage("node: too many --param (at most 15)%s", "");
      cfg.params[nparams++] = next;
    } else if (strcmp(a, "--words") == 0) {
      NEED(); if (!parse_u64(next, &v)) return fail_usage("node: --words must be a count, got '%s'", next);
      cfg.words = v;
    } else if (strcmp(a, "--rate") == 0) {
      NEED(); char *end; double r = strtod(next, &end);
      if (*end || !(r > 0 && r <= 100000)) return fail_usage("node: --rate must be a positive number of words per second, got '%s'", next);
      cfg.words_per_sec = r;
    } else if (strcmp(a, "--quiet") == 0) cfg.quiet = true;
    else if (strcmp(a, "--log-level") == 0) {
      NEED(); syn_log_level_t level;
      if (syn_log_parse_level(next, &level) != 0) return fail_usage("--log-level must be trace, debug, info, warn, error or off, got '%s'", next);
      syn_log_set_level(level);
    } else return fail_usage("node: unknown option '%s'", a);
#undef NEED
  }
  if (!has_port || !has_id || !has_n) return fail_usage("node needs -p PORT, -i ID and -n N%s", "");
  if (cfg.data_dir == NULL) { snprintf(data_dir, sizeof data_dir, "data/node-%u", cfg.id); cfg.data_dir = data_dir; }
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  syn_live_t *lv;
  char err[512];
  if (syn_live_new(&lv, &loop, &cfg, err, sizeof err) != 0) {
    fprintf(stderr, "synod: node %u: %s\n", cfg.id, err);
    uv_loop_close(&loop);
    return 1;
  }
  lua_State *L = new_state();
  syn_repl_t *repl = NULL;
  if (syn_repl_new(&repl, lv, L, err, sizeof err) != 0) return node_abort(&loop, lv, repl, L, cfg.id, err);
  services_t sv = { .repl = repl };
  if (http_port >= 0 && syn_api_new(&sv.api, lv, http_host, http_port, http_token, err, sizeof err) != 0)
    return node_abort(&loop, lv, repl, L, cfg.id, err);
  syn_live_on_stop(lv, node_stopped, &sv);
  if (!cfg.quiet) {
    printf("synod node %u of %u (%s) listening on %s:%u", cfg.id, cfg.n, cfg.proto, cfg.listen_host,
           syn_transport_port(syn_live_transport(lv)));
    if (cfg.bootstrap_host) printf(", bootstrap %s:%u", cfg.bootstrap_host, cfg.bootstrap_port);
    if (sv.api) printf(", http %s:%d%s", http_host, syn_api_port(sv.api), http_token && *http_token ? " (token)" : "");
    printf("\ndata %s · REPL: synod attach %s\n", syn_live_data_dir(lv), syn_repl_path(repl));
    fflush(stdout);
  }
  int status = 0;
  if (syn_live_start(lv, err, sizeof err) != 0) {
    fprintf(stderr, "synod: node %u: %s\n", cfg.id, err);
    syn_live_stop(lv);
    status = 1;
  } else {
    syn_console_start(lv);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  if (status == 0) status = syn_live_exit_status(lv);
  syn_live_free(lv);
  syn_repl_free(repl);
  syn_api_free(sv.api);
  lua_close(L);
  int rc = uv_loop_close(&loop);
  if (rc != 0) SYN_LOG_WARN("node: a handle was left open at exit (%s)", uv_strerror(rc));
  return status;
}

/* ---- synod attach ---- */

static void attach_out(void *ctx, char kind, const char *text, size_t len) {
  (void)ctx;
  FILE *f = kind == 'e' ? stderr : stdout;
  fwrite(text, 1, len, f);
  if (kind == 'e' && (len == 0 || text[len - 1] != '\n')) fputc('\n', f);
  fflush(f);
}

static int cmd_attach(int argc, char **argv) {
  if (argc != 1 || argv[0][0] == '-') {
    if (argc == 1 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0)) {
      printf("usage: synod attach PATH\n\nA Lua REPL inside a running node: PATH is its repl.sock or its data\n"
             "directory. `node` is the node (node:status(), node:peers(), node:log(n),\n"
             "node:behave(require \"behaviors.pbft.equivocate\" {...}), node:behave(nil)).\n"
             "Without a terminal, chunks are read from standard input; the exit status is 1\n"
             "if any of them failed.\n");
      return 0;
    }
    return fail_usage("attach needs the node's socket or data directory: synod attach PATH%s", "");
  }
  char err[512];
  signal(SIGPIPE, SIG_IGN);   /* a node gone between chunks is reported, not a silent exit 141 */
  int fd = syn_repl_connect(argv[0], err, sizeof err);
  if (fd < 0) { fprintf(stderr, "synod: %s\n", err); return 1; }
  bool tty = isatty(STDIN_FILENO);
  if (tty) printf("attached to %s — Lua %s.%s inside the node; `node` is the node; Ctrl-D detaches.\n", argv[0],
                  LUA_VERSION_MAJOR, LUA_VERSION_MINOR);
  int status = 0;
  char *line;
  syn_buf_t chunk;
  syn_buf_init(&chunk, SYN_MAX_FRAME_BYTES - 16);
  while ((line = readline(tty ? (chunk.len ? ">> " : "node> ") : "")) != NULL) {
    if (chunk.len == 0 && *line == '\0') { free(line); continue; }
    if (chunk.len) (void)syn_buf_append(&chunk, "\n", 1);
    if (syn_buf_append(&chunk, line, strlen(line)) != 0) { fprintf(stderr, "synod: chunk too long\n"); free(line); status = 1; break; }
    if (tty && *line) add_history(line);
    free(line);
    int rc = syn_repl_eval(fd, (const char *)chunk.data, chunk.len, attach_out, NULL);
    if (rc == 2) continue;   /* incomplete: read another line */
    syn_buf_reset(&chunk);
    if (rc == -2) { fprintf(stderr, "synod: the node closed the REPL connection\n"); status = 1; break; }
    if (rc == 1) status = 1;
  }
  if (chunk.len && status == 0) { fprintf(stderr, "synod: input ended inside an unfinished chunk\n"); status = 1; }
  syn_buf_free(&chunk);
  close(fd);
  if (tty) printf("\n");
  return tty ? 0 : status;
}

/* ---- REPL ---- */

static bool incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX) return false;
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  return len >= 5 && strcmp(msg + len - 5, "<eof>") == 0;
}

static int cmd_repl(void) {
  lua_State *L = new_state();
  bool tty = isatty(STDIN_FILENO);
  if (luaL_loadstring(L, syn_repl_show_src) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "synod: %s\n", lua_tostring(L, -1));
    return 2;
  }
  int show = luaL_ref(L, LUA_REGISTRYINDEX);
  if (tty) printf("synod %s — Lua %s.%s with `synod` loaded; Ctrl-D quits.\n", SYN_VERSION, LUA_VERSION_MAJOR, LUA_VERSION_MINOR);
  char *line;
  int status = 0;
  while ((line = readline(tty ? "synod> " : "")) != NULL) {
    if (*line == '\0') { free(line); continue; }
    lua_settop(L, 0);
    lua_pushstring(L, line);
    free(line);
    /* An expression prints its value: try "return <line>" first. */
    const char *retline = lua_pushfstring(L, "return %s;", lua_tostring(L, 1));
    int rc = luaL_loadbuffer(L, retline, strlen(retline), "=stdin");
    if (rc != LUA_OK) {
      lua_settop(L, 1);
      for (;;) {
        size_t len;
        const char *src = lua_tolstring(L, 1, &len);
        rc = luaL_loadbuffer(L, src, len, "=stdin");
        if (!incomplete(L, rc)) break;
        lua_pop(L, 1);
        char *more = readline(tty ? ">> " : "");
        if (more == NULL) break;
        lua_pushfstring(L, "%s\n%s", lua_tostring(L, 1), more);
        lua_replace(L, 1);
        free(more);
      }
    }
    if (tty) add_history(lua_tostring(L, 1));
    if (rc == LUA_OK) {
      int base = lua_gettop(L);
      rc = synL_pcall(L, 0, LUA_MULTRET, "stdin", 0);
      if (rc == LUA_OK) {
        int nres = lua_gettop(L) - base + 1;
        for (int i = 0; i < nres; i++) {
          lua_rawgeti(L, LUA_REGISTRYINDEX, show);
          lua_pushvalue(L, base + i);
          const char *s = lua_pcall(L, 1, 1, 0) == LUA_OK ? lua_tostring(L, -1) : NULL;
          printf(i ? "\t%s" : "%s", s ? s : "?");
          lua_pop(L, 1);
        }
        if (nres > 0) printf("\n");
      }
    }
    if (rc != LUA_OK) { fprintf(stderr, "%s\n", lua_tostring(L, -1)); status = 1; }
    fflush(stdout);
  }
  if (tty) printf("\n");
  lua_close(L);
  return tty ? 0 : status;
}

int main(int argc, char **argv) {
  int i = 1;
  while (i < argc && strcmp(argv[i], "--log-level") == 0) {
    syn_log_level_t level;
    if (i + 1 >= argc || syn_log_parse_level(argv[i + 1], &level) != 0)
      return fail_usage("--log-level must be trace, debug, info, warn, error or off, got '%s'", i + 1 < argc ? argv[i + 1] : "");
    syn_log_set_level(level);
    i += 2;
  }
  if (i >= argc) return cmd_repl();
  const char *cmd = argv[i++];
  if (strcmp(cmd, "run") == 0) return cmd_run(argc - i, argv + i);
  if (strcmp(cmd, "keygen") == 0) return cmd_keygen(argc - i, argv + i);
  if (strcmp(cmd, "node") == 0) return cmd_node(argc - i, argv + i);
  if (strcmp(cmd, "attach") == 0) return cmd_attach(argc - i, argv + i);
  if (strcmp(cmd, "cluster") == 0 || strcmp(cmd, "bench") == 0) {
    char self[4096];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) { fprintf(stderr, "synod: cannot find its own executable\n"); return 2; }
    self[k] = '\0';
    return strcmp(cmd, "cluster") == 0 ? syn_cluster_main(argc - i, argv + i, self) : syn_bench_main(argc - i, argv + i, self);
  }
  if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) { printf("synod %s (Lua %s.%s)\n", SYN_VERSION, LUA_VERSION_MAJOR, LUA_VERSION_MINOR); return 0; }
  if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) { fputs(usage, stdout); return 0; }
  return fail_usage("unknown command '%s'", cmd);
}
