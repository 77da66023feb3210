/* cluster.c — `synod cluster`: a local cluster of node processes under one
 * directory. up writes keys and starts N `synod node` processes in the
 * background (node i: peer port B+i, HTTP port B+100+i, data DIR/node-i,
 * log DIR/logs/node-i.log, pid DIR/node-i.pid); status, submit, kill,
 * restart and down work on the same directory, whose cluster.conf records
 * how the nodes were started. Talks to nodes only through their HTTP API
 * and signals. Never: a protocol rule. */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "../base/base.h"
#include "../crypto/crypto.h"

#define SYN_MAX_CLUSTER_ARGS 48
#define HTTP_REPLY_BYTES     (64u << 10)

typedef struct {
  char dir[2048];
  uint32_t n;
  uint16_t base;
  char protocol[16];
  char extra[1024];        /* further node options, space-separated (no spaces inside one) */
} ccfg_t;

static const char cluster_usage[] =
  "usage: synod cluster COMMAND [--dir DIR] [OPTIONS]\n"
  "\n"
  "commands:\n"
  "  up -n N [--protocol P] [--base-port B] [--clients C] [--param NAME=VALUE]...\n"
  "                       write keys and start N nodes in the background, then print them\n"
  "  status [--json]      each node: pid, ports, whether it runs, view, last executed\n"
  "  submit OP            submit one operation through the first running node\n"
  "  kill I               SIGKILL node I (its data directory stays)\n"
  "  restart I            start node I again from its data directory\n"
  "  down                 stop every node (SIGTERM, then SIGKILL after 5 s)\n"
  "\n"
  "DIR defaults to ./cluster and B to 7000: node i listens on B+i for peers and on\n"
  "B+100+i for HTTP, keeps its data in DIR/node-i and logs to DIR/logs/node-i.log.\n";

static int fail(const char *fmt, const char *arg) {
  fprintf(stderr, "synod cluster: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n");
  return 2;
}

/* ---- cluster.conf ---- */

static int save_conf(const ccfg_t *c) {
  char path[2200];
  snprintf(path, sizeof path, "%s/cluster.conf", c->dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);   /* it may hold the HTTP token */
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (f == NULL) { if (fd >= 0) close(fd); return -SYN_EIO; }
  fprintf(f, "n %u\nbase %u\nprotocol %s\nextra %s\n", c->n, c->base, c->protocol, c->extra);
  return fclose(f) == 0 ? 0 : -SYN_EIO;
}

/* Copies a config value, cut to fit (a hand-edited file may be longer). */
static void copy_cut(char *dst, size_t cap, const char *src) {
  size_t k = strlen(src);
  if (k >= cap) k = cap - 1;
  memcpy(dst, src, k);
  dst[k] = '\0';
}

static int load_conf(ccfg_t *c) {
  char path[2200], line[1200];
  snprintf(path, sizeof path, "%s/cluster.conf", c->dir);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -SYN_EIO;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = '\0';
    if (strncmp(line, "n ", 2) == 0) c->n = (uint32_t)strtoul(line + 2, NULL, 10);
    else if (strncmp(line, "base ", 5) == 0) c->base = (uint16_t)strtoul(line + 5, NULL, 10);
    else if (strncmp(line, "protocol ", 9) == 0) copy_cut(c->protocol, sizeof c->protocol, line + 9);
    else if (strncmp(line, "extra ", 6) == 0) copy_cut(c->extra, sizeof c->extra, line + 6);
  }
  fclose(f);
  return c->n > 0 && c->base > 0 ? 0 : -SYN_EPARSE;
}

/* ---- processes ---- */

static pid_t read_pid(const ccfg_t *c, uint32_t i) {
  char path[2200];
  snprintf(path, sizeof path, "%s/node-%u.pid", c->dir, i);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  long pid = 0;
  if (fscanf(f, "%ld", &pid) != 1) pid = 0;
  fclose(f);
  return (pid_t)pid;
}

static bool alive(pid_t pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  int st;
  if (waitpid(pid, &st, WNOHANG) == pid) return false;   /* our child, just reaped */
  /* A zombie nobody reaped yet (a container's pid 1 may never) is not running. */
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *paren = strrchr(buf, ')');
  return !(paren && paren[1] == ' ' && paren[2] == 'Z');
}

static int start_node(const ccfg_t *c, uint32_t i, const char *self) {
  char port[16], id[16], n[16], http[16], boot[64], keys[2200], data[2200], logp[2200], pidp[2200];
  snprintf(port, sizeof port, "%u", c->base + i);
  snprintf(id, sizeof id, "%u", i);
  snprintf(n, sizeof n, "%u", c->n);
  snprintf(http, sizeof http, "%u", c->base + 100 + i);
  snprintf(boot, sizeof boot, "127.0.0.1:%u", c->base);
  snprintf(keys, sizeof keys, "%s/keys", c->dir);
  snprintf(data, sizeof data, "%s/node-%u", c->dir, i);
  snprintf(logp, sizeof logp, "%s/logs/node-%u.log", c->dir, i);
  snprintf(pidp, sizeof pidp, "%s/node-%u.pid", c->dir, i);
  char extra[sizeof c->extra];
  snprintf(extra, sizeof extra, "%s", c->extra);
  const char *argv[SYN_MAX_CLUSTER_ARGS];
  int k = 0;
  argv[k++] = self; argv[k++] = "node"; argv[k++] = "-p"; argv[k++] = port; argv[k++] = "-i"; argv[k++] = id;
  argv[k++] = "-n"; argv[k++] = n; argv[k++] = "--protocol"; argv[k++] = c->protocol;
  argv[k++] = "--keys"; argv[k++] = keys; argv[k++] = "--data"; argv[k++] = data; argv[k++] = "--http"; argv[k++] = http;
  if (i > 0) { argv[k++] = "-b"; argv[k++] = boot; }
  for (char *tok = strtok(extra, " "); tok && k < SYN_MAX_CLUSTER_ARGS - 1; tok = strtok(NULL, " ")) argv[k++] = tok;
  argv[k] = NULL;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return -SYN_EIO;
  if (pid == 0) {
    setsid();
    int in = open("/dev/null", O_RDONLY);
    int out = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in >= 0) dup2(in, STDIN_FILENO);
    if (out >= 0) { dup2(out, STDOUT_FILENO); dup2(out, STDERR_FILENO); }
    execv(self, (char *const *)argv);
    fprintf(stderr, "synod cluster: cannot run %s: %s\n", self, strerror(errno));
    _exit(127);
  }
  FILE *f = fopen(pidp, "w");
  if (f == NULL) return -SYN_EIO;
  fprintf(f, "%ld\n", (long)pid);
  fclose(f);
  return 0;
}

/* ---- a minimal HTTP client (loopback, Connection: close) ---- */

static int http_call(uint16_t port, const char *method, const char *path, const char *body,
                     char *out, size_t cap, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) { close(fd); return -1; }
  char req[8192];
  const char *tok = getenv("SYNOD_HTTP_TOKEN");
  char auth[300] = "";
  if (tok && *tok) snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", tok);
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
                   method, path, auth, body ? strlen(body) : 0, body ? body : "");
  if (n < 0 || (size_t)n >= sizeof req || write(fd, req, (size_t)n) != n) { close(fd); return -1; }
  size_t len = 0;
  ssize_t k;
  while (len + 1 < cap && (k = read(fd, out + len, cap - 1 - len)) > 0) len += (size_t)k;
  close(fd);
  out[len] = '\0';
  int status = 0;
  if (sscanf(out, "HTTP/1.%*d %d", &status) != 1) return -1;
  char *b = strstr(out, "\r\n\r\n");
  if (b) memmove(out, b + 4, strlen(b + 4) + 1);
  return status;
}

/* A number field of a flat JSON object, or -1. */
static long long json_num(const char *json, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(json, pat);
  return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* ---- commands ---- */

static void sleep_ms(int ms) {
  struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
  nanosleep(&ts, NULL);
}

static int cmd_status(const ccfg_t *c, bool json) {
  char *buf = malloc(HTTP_REPLY_BYTES);
  if (buf == NULL) return 1;
  if (json) printf("{\"dir\":\"%s\",\"n\":%u,\"protocol\":\"%s\",\"nodes\":[", c->dir, c->n, c->protocol);
  else printf("%-4s %-8s %-6s %-6s %-8s %-5s %-8s %-13s %s\n", "id", "pid", "port", "http", "state", "view", "primary", "last_executed", "peers");
  uint32_t running = 0;
  for (uint32_t i = 0; i < c->n; i++) {
    pid_t pid = read_pid(c, i);
    bool up = alive(pid);
    int st = up ? http_call((uint16_t)(c->base + 100 + i), "GET", "/status", NULL, buf, HTTP_REPLY_BYTES, 2000) : -1;
    bool ok = st == 200;
    running += up;
    long long view = ok ? json_num(buf, "view") : -1, prim = ok ? json_num(buf, "primary") : -1,
              last = ok ? json_num(buf, "last_executed") : -1, peers = ok ? json_num(buf, "peers_connected") : -1;
    const char *state = !up ? "down" : ok ? "running" : "no-http";
    if (json) {
      printf("%s{\"id\":%u,\"pid\":%ld,\"port\":%u,\"http\":%u,\"state\":\"%s\"", i ? "," : "", i, (long)pid,
             c->base + i, c->base + 100 + i, state);
      if (ok) printf(",\"view\":%lld,\"primary\":%lld,\"last_executed\":%lld,\"peers_connected\":%lld", view, prim, last, peers);
      printf("}");
    } else if (ok) {
      printf("%-4u %-8ld %-6u %-6u %-8s %-5lld %-8lld %-13lld %lld/%u\n", i, (long)pid, c->base + i, c->base + 100 + i,
             state, view, prim, last, peers, c->n - 1);
    } else {
      printf("%-4u %-8ld %-6u %-6u %-8s\n", i, (long)pid, c->base + i, c->base + 100 + i, state);
    }
  }
  if (json) printf("],\"running\":%u}\n", running);
  else printf("%u of %u nodes running (%s, %s)\n", running, c->n, c->protocol, c->dir);
  free(buf);
  return running == c->n ? 0 : 1;
}

/* mkdir -p, 0700 for what it creates. */
static int make_path(const char *dir) {
  char buf[2200];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') { *p = '\0'; if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -1; *p = '/'; }
  return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int cmd_up(ccfg_t *c, const char *self) {
  char path[2200];
  if (make_path(c->dir) != 0) return fail("cannot create '%s'", c->dir);
  snprintf(path, sizeof path, "%s/logs", c->dir);
  if (mkdir(path, 0700) != 0 && errno != EEXIST) return fail("cannot create '%s'", path);
  ccfg_t old = { 0 };
  snprintf(old.dir, sizeof old.dir, "%s", c->dir);
  if (load_conf(&old) == 0) {
    for (uint32_t i = 0; i < old.n; i++)
      if (alive(read_pid(&old, i))) return fail("a cluster already runs in '%s' (synod cluster down first)", c->dir);
    if (old.n != c->n) return fail("'%s' holds a cluster of another size; use another --dir or remove it", c->dir);
  }
  snprintf(path, sizeof path, "%s/keys/keys.pub", c->dir);
  if (access(path, R_OK) != 0) {
    char keys[2200];
    snprintf(keys, sizeof keys, "%s/keys", c->dir);
    if (syn_crypto_init() != 0 || syn_keys_write(keys, c->n, false, 0) != 0)
      return fail("cannot write keys: %s", syn_keys_error());
  }
  if (save_conf(c) != 0) return fail("cannot write %s/cluster.conf", c->dir);
  for (uint32_t i = 0; i < c->n; i++)
    if (start_node(c, i, self) != 0) return fail("cannot start node processes in '%s'", c->dir);
  /* Wait (bounded) until every node answers on HTTP and sees its peers. */
  char *buf = malloc(HTTP_REPLY_BYTES);
  uint32_t ready = 0;
  for (int tries = 0; buf && tries < 100 && ready < c->n; tries++) {
    ready = 0;
    for (uint32_t i = 0; i < c->n; i++)
      if (http_call((uint16_t)(c->base + 100 + i), "GET", "/status", NULL, buf, HTTP_REPLY_BYTES, 500) == 200 &&
          json_num(buf, "peers_connected") == (long long)c->n - 1) ready++;
    if (ready < c->n) sleep_ms(100);
  }
  free(buf);
  printf("cluster of %u %s nodes in %s%s\n", c->n, c->protocol, c->dir,
         ready == c->n ? "" : " (some nodes are not ready yet: see the logs)");
  cmd_status(c, false);
  printf("submit:  synod cluster submit 'put k v' --dir %s   (or curl -d 'put k v' 127.0.0.1:%u/submit)\n", c->dir, c->base + 100);
  printf("attach:  synod attach %s/node-0\n", c->dir);
  printf("stop:    synod cluster down --dir %s\n", c->dir);
  return ready == c->n ? 0 : 1;
}

static int cmd_submit(const ccfg_t *c, const char *op) {
  char *buf = malloc(HTTP_REPLY_BYTES);
  if (buf == NULL) return 1;
  for (uint32_t i = 0; i < c->n; i++) {
    if (!alive(read_pid(c, i))) continue;
    int st = http_call((uint16_t)(c->base + 100 + i), "POST", "/submit", op, buf, HTTP_REPLY_BYTES, 30000);
    if (st < 0) continue;
    printf("%s\n", buf);
    free(buf);
    return st == 200 ? 0 : 1;
  }
  free(buf);
  fprintf(stderr, "synod cluster: no node of %s answers\n", c->dir);
  return 1;
}

static int cmd_kill(const ccfg_t *c, uint32_t i) {
  pid_t pid = read_pid(c, i);
  if (!alive(pid)) { fprintf(stderr, "synod cluster: node %u is not running\n", i); return 1; }
  kill(pid, SIGKILL);
  for (int t = 0; t < 50 && alive(pid); t++) sleep_ms(20);
  printf("node %u (pid %ld) killed with SIGKILL\n", i, (long)pid);
  return 0;
}

static int cmd_restart(const ccfg_t *c, uint32_t i, const char *self) {
  if (alive(read_pid(c, i))) { fprintf(stderr, "synod cluster: node %u is still running (kill it first)\n", i); return 1; }
  if (start_node(c, i, self) != 0) return fail("cannot start node %s", "");
  char *buf = malloc(HTTP_REPLY_BYTES);
  int st = -1;
  for (int t = 0; buf && t < 100 && st != 200; t++) {
    st = http_call((uint16_t)(c->base + 100 + i), "GET", "/status", NULL, buf, HTTP_REPLY_BYTES, 500);
    if (st != 200) sleep_ms(100);
  }
  free(buf);
  printf("node %u restarted (pid %ld)%s\n", i, (long)read_pid(c, i), st == 200 ? "" : ", but it does not answer yet");
  return st == 200 ? 0 : 1;
}

static int cmd_down(const ccfg_t *c) {
  uint32_t stopped = 0;
  for (uint32_t i = 0; i < c->n; i++) {
    pid_t pid = read_pid(c, i);
    if (alive(pid)) { kill(pid, SIGTERM); stopped++; }
  }
  for (int t = 0; t < 250; t++) {
    bool any = false;
    for (uint32_t i = 0; i < c->n; i++) any |= alive(read_pid(c, i));
    if (!any) break;
    sleep_ms(20);
  }
  for (uint32_t i = 0; i < c->n; i++) {
    pid_t pid = read_pid(c, i);
    if (alive(pid)) { kill(pid, SIGKILL); fprintf(stderr, "node %u did not stop in 5 s: SIGKILL\n", i); }
    char path[2200];
    snprintf(path, sizeof path, "%s/node-%u.pid", c->dir, i);
    (void)unlink(path);
  }
  printf("stopped %u node%s in %s\n", stopped, stopped == 1 ? "" : "s", c->dir);
  return 0;
}

static bool parse_u32(const char *s, uint32_t *out) {
  if (s == NULL || *s < '0' || *s > '9') return false;
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*end || v > UINT32_MAX) return false;
  *out = (uint32_t)v;
  return true;
}

/* The nodes' --http-token, if the cluster was started with one: the
 * commands' own HTTP calls need it too. */
static void use_token(const ccfg_t *c) {
  const char *t = strstr(c->extra, "--http-token ");
  if (t == NULL) return;
  char tok[300];
  copy_cut(tok, sizeof tok, t + 13);
  tok[strcspn(tok, " ")] = '\0';
  setenv("SYNOD_HTTP_TOKEN", tok, 1);
}

int syn_cluster_main(int argc, char **argv, const char *self) {
  if (argc < 1 || strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
    fputs(cluster_usage, argc < 1 ? stderr : stdout);
    return argc < 1 ? 2 : 0;
  }
  const char *cmd = argv[0];
  ccfg_t c = { .base = 7000 };
  snprintf(c.dir, sizeof c.dir, "cluster");
  snprintf(c.protocol, sizeof c.protocol, "pbft");
  const char *pos = NULL;
  bool json = false, has_n = false;
  size_t xl = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
    uint32_t v;
    if (strcmp(a, "--dir") == 0 && next) { snprintf(c.dir, sizeof c.dir, "%s", next); i++; }
    else if (strcmp(a, "-n") == 0 && next) {
      if (!parse_u32(next, &v) || v == 0 || v > 64) return fail("-n must be 1..64, got '%s'", next);
      c.n = v; has_n = true; i++;
    } else if (strcmp(a, "--base-port") == 0 && next) {
      if (!parse_u32(next, &v) || v < 1024 || v > 65000) return fail("--base-port must be 1024..65000, got '%s'", next);
      c.base = (uint16_t)v; i++;
    } else if (strcmp(a, "--protocol") == 0 && next) {
      if (strcmp(next, "pbft") != 0 && strcmp(next, "tom") != 0) return fail("--protocol must be pbft or tom, got '%s'", next);
      snprintf(c.protocol, sizeof c.protocol, "%s", next); i++;
    } else if ((strcmp(a, "--param") == 0 || strcmp(a, "--clients") == 0 || strcmp(a, "--http-token") == 0 ||
                strcmp(a, "--words") == 0 || strcmp(a, "--rate") == 0 || strcmp(a, "--log-level") == 0) && next) {
      if (strchr(next, ' ') || xl + strlen(a) + strlen(next) + 3 >= sizeof c.extra) return fail("bad value for %s", a);
      xl += (size_t)snprintf(c.extra + xl, sizeof c.extra - xl, "%s%s %s", xl ? " " : "", a, next);
      i++;
    } else if (strcmp(a, "--json") == 0) json = true;
    else if (a[0] == '-' && a[1] != '\0') return fail("unknown option '%s' (synod cluster help)", a);
    else if (pos == NULL) pos = a;
    else return fail("unexpected argument '%s'", a);
  }
  if (strcmp(cmd, "up") == 0) {
    if (!has_n) return fail("up needs -n N%s", "");
    use_token(&c);
    return cmd_up(&c, self);
  }
  static const char *const known[] = { "status", "submit", "kill", "restart", "down", NULL };
  bool is_known = false;
  for (int k = 0; known[k]; k++) is_known |= strcmp(cmd, known[k]) == 0;
  if (!is_known) return fail("unknown cluster command '%s' (up, status, submit, kill, restart, down)", cmd);
  ccfg_t saved = { 0 };
  snprintf(saved.dir, sizeof saved.dir, "%s", c.dir);
  if (load_conf(&saved) != 0) return fail("no cluster in '%s' (synod cluster up -n N first, or give --dir)", c.dir);
  use_token(&saved);
  uint32_t idx;
  if (strcmp(cmd, "status") == 0) return cmd_status(&saved, json);
  if (strcmp(cmd, "submit") == 0) {
    if (pos == NULL) return fail("submit needs an operation, e.g. synod cluster submit 'put k v'%s", "");
    return cmd_submit(&saved, pos);
  }
  if (strcmp(cmd, "kill") == 0 || strcmp(cmd, "restart") == 0) {
    if (!parse_u32(pos, &idx) || idx >= saved.n) return fail("%s needs a node index in this cluster", cmd);
    return strcmp(cmd, "kill") == 0 ? cmd_kill(&saved, idx) : cmd_restart(&saved, idx, self);
  }
  if (strcmp(cmd, "down") == 0) return cmd_down(&saved);
  return fail("unknown cluster command '%s' (up, status, submit, kill, restart, down)", cmd);
}
