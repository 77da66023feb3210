/* console.h — the terminal console of `synod node` (see console.c). */
#ifndef SYN_CONSOLE_H
#define SYN_CONSOLE_H

#include "runtime.h"

/* Starts the console when standard input is a terminal (0 otherwise too). */
int syn_console_start(syn_live_t *lv);
/* Removes the line handler and closes its handle (idempotent). */
void syn_console_stop(void);

#endif
