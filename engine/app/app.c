/* app.c — the registry of built-in replicated applications (app.h).
 * Owns only the table below; never creates or runs an application. */
#include "app.h"

#include <string.h>

static const syn_app_t *const apps[] = { &syn_kv_app };
static const char *const names[] = { "kv", NULL };

_Static_assert(sizeof apps / sizeof apps[0] <= SYN_MAX_APPS, "raise SYN_MAX_APPS");
_Static_assert(sizeof names / sizeof names[0] == sizeof apps / sizeof apps[0] + 1,
               "every app has a name in names[]");

const syn_app_t *syn_app_find(const char *name) {
  if (name == NULL) return NULL;
  for (size_t i = 0; i < sizeof apps / sizeof apps[0]; i++) {
    if (strcmp(apps[i]->name, name) == 0) return apps[i];
  }
  return NULL;
}

const char *const *syn_app_names(void) { return names; }
