/* api.h — the HTTP admin API of a live node (see api.c): POST /submit (waits
 * for the result), POST /propose?value=V, GET /status, /peers, /detections
 * (JSON) and /metrics (Prometheus text). Errors are JSON: 400, 401 (token),
 * 404, 405, 413, 503. */
#ifndef SYN_API_H
#define SYN_API_H

#include "http.h"
#include "runtime.h"

typedef struct syn_api syn_api_t;

/* Serves the API on host:port (port 0: a free one); token NULL or "": no
 * token. On failure err names what was wrong. */
int syn_api_new(syn_api_t **out, syn_live_t *lv, const char *host, int port, const char *token, char *err, size_t errlen);
int syn_api_port(const syn_api_t *a);
/* Starts closing (the runtime's stop); free after the loop ended. */
void syn_api_close(syn_api_t *a);
void syn_api_free(syn_api_t *a);

#endif
