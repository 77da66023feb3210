/* console.c — the terminal console of `synod node`: line editing and
 * history (libedit's callback interface on the node's uv loop, so the node
 * keeps serving while a line is typed) and the commands submit, status,
 * peers, log, help, quit. Built into the `synod` executable only (libedit
 * is not a dependency of synod.so). Never: a protocol rule. */
#include "console.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <editline/readline.h>

static syn_live_t *con_lv;
static uv_poll_t con_poll;
static bool con_on;
static char con_prompt[32];

static const char con_help[] =
  "commands:\n"
  "  submit <op>   submit an operation and wait for its result (pbft: put k v, get k, del k, cas k old new;\n"
  "                tom: a word to multicast)\n"
  "  status        the node's state: view, primary, last executed, counters\n"
  "  peers         each peer: address, connection, last message\n"
  "  log [n]       the last n executed (pbft) or delivered (tom) entries, default 10\n"
  "  help          this text\n"
  "  quit          stop the node (as SIGINT does)\n";

static void print_kv(void *ctx, const char *key, int64_t value) {
  int *col = ctx;
  printf("  %-20s %lld%s", key, (long long)value, ++*col % 3 == 0 ? "\n" : "");
}

static void submitted(void *ctx, int rc, uint64_t seq, const uint8_t *res, size_t len, int64_t latency_ns) {
  char *op = ctx;
  if (rc == 0) printf("\r[%s] seq %llu: %.*s (%.1f ms)\n", op, (unsigned long long)seq, (int)len, (const char *)res,
                      (double)latency_ns / 1e6);
  else printf("\r[%s] not completed: %s\n", op, syn_strerror(rc));
  free(op);
  if (con_on) rl_forced_update_display();
  fflush(stdout);
}

static void cmd_peers(void) {
  syn_transport_t *t = syn_live_transport(con_lv);
  const syn_live_cfg_t *c = syn_live_cfg(con_lv);
  printf("  %-4s %-22s %-13s %-10s %10s %10s\n", "id", "address", "state", "last msg", "frames in", "frames out");
  for (uint32_t p = 0; p < c->n; p++) {
    if (p == c->id) { printf("  %-4u %-22s %-13s\n", p, "(this node)", "-"); continue; }
    syn_peer_info_t i;
    syn_transport_peer(t, p, &i);
    char addr[96] = "?", last[32] = "never";
    if (i.known) snprintf(addr, sizeof addr, "%s:%u", i.host, i.port);
    if (i.last_rx_ns) snprintf(last, sizeof last, "%.1fs ago", (double)((int64_t)uv_hrtime() - i.last_rx_ns) / 1e9);
    printf("  %-4u %-22s %-13s %-10s %10llu %10llu\n", p, addr, i.connected ? "connected" : "disconnected", last,
           (unsigned long long)i.frames_in, (unsigned long long)i.frames_out);
  }
}

static void cmd_log(const char *arg) {
  long k = arg && *arg ? strtol(arg, NULL, 10) : 10;
  if (k <= 0 || k > SYN_MAX_LIVE_LOG) { printf("log: n must be 1..%d\n", SYN_MAX_LIVE_LOG); return; }
  syn_live_entry_t *e = calloc((size_t)k, sizeof *e);
  if (e == NULL) return;
  uint32_t got = syn_live_log(con_lv, (uint32_t)k, e);
  if (got == 0) printf("  (nothing executed yet)\n");
  for (uint32_t j = 0; j < got; j++)
    printf("  #%-6llu from %-4u ts %-8llu %s%s\n", (unsigned long long)e[j].seq, e[j].origin,
           (unsigned long long)e[j].ts, e[j].value, e[j].len >= sizeof e[j].value ? "…" : "");
  free(e);
}

static void on_line(char *line) {
  if (line == NULL) {   /* Ctrl-D */
    printf("\n");
    syn_live_stop(con_lv);
    return;
  }
  char *s = line;
  while (*s == ' ' || *s == '\t') s++;
  size_t len = strlen(s);
  while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) s[--len] = '\0';
  if (*s) add_history(s);
  char *arg = strchr(s, ' ');
  if (arg) { *arg++ = '\0'; while (*arg == ' ') arg++; }
  if (*s == '\0') {
  } else if (strcmp(s, "submit") == 0) {
    if (arg == NULL || *arg == '\0') printf("submit needs an operation, e.g. 'submit put k v'\n");
    else {
      char *op = strdup(arg);
      int rc = op ? syn_live_submit(con_lv, (const uint8_t *)arg, strlen(arg), submitted, op) : -SYN_ENOMEM;
      if (rc) { printf("submit refused: %s\n", syn_strerror(rc)); free(op); }
    }
  } else if (strcmp(s, "status") == 0) {
    int col = 0;
    syn_live_status(con_lv, print_kv, &col);
    if (col % 3) printf("\n");
  } else if (strcmp(s, "peers") == 0) {
    cmd_peers();
  } else if (strcmp(s, "log") == 0) {
    cmd_log(arg);
  } else if (strcmp(s, "help") == 0 || strcmp(s, "?") == 0) {
    fputs(con_help, stdout);
  } else if (strcmp(s, "quit") == 0 || strcmp(s, "exit") == 0) {
    syn_live_stop(con_lv);
  } else {
    printf("unknown command '%s' (try 'help')\n", s);
  }
  free(line);
  fflush(stdout);
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)h; (void)events;
  if (status < 0) { syn_console_stop(); return; }
  rl_callback_read_char();
}

int syn_console_start(syn_live_t *lv) {
  if (!isatty(STDIN_FILENO)) return 0;
  con_lv = lv;
  snprintf(con_prompt, sizeof con_prompt, "synod[%u]> ", syn_live_cfg(lv)->id);
  if (uv_poll_init(syn_live_loop(lv), &con_poll, STDIN_FILENO) != 0) return -SYN_EIO;
  printf("type 'help' for the commands\n");
  rl_callback_handler_install(con_prompt, on_line);
  uv_poll_start(&con_poll, UV_READABLE, on_readable);
  con_on = true;
  return 0;
}

void syn_console_stop(void) {
  if (!con_on) return;
  con_on = false;
  rl_callback_handler_remove();
  uv_close((uv_handle_t *)&con_poll, NULL);
}
