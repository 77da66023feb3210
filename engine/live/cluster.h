/* cluster.h — `synod cluster up|status|submit|kill|restart|down` (see cluster.c). */
#ifndef SYN_CLUSTER_H
#define SYN_CLUSTER_H

/* argv[0] is the subcommand; self is the path of the synod executable the
 * nodes run. Returns the process exit status. */
int syn_cluster_main(int argc, char **argv, const char *self);

#endif
