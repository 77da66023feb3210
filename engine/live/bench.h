/* bench.h — `synod bench`: closed-loop clients against a local PBFT cluster (see bench.c). */
#ifndef SYN_BENCH_H
#define SYN_BENCH_H

int syn_bench_main(int argc, char **argv, const char *self);

#endif
