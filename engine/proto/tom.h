/* tom.h — the names TOM (Lamport totally ordered multicast, tom.c) shares
 * with runtimes, tests and specs: its limits, message type ids, parameter,
 * reason and timer indexes. The protocol itself is syn_tom_proto (proto.h). */
#ifndef SYN_TOM_H
#define SYN_TOM_H

#include "proto.h"

#define SYN_MAX_TOM_NODES       64     /* cluster size; init rejects more (-SYN_ELIMIT) */
#define SYN_MAX_TOM_PENDING     1024   /* multicast messages held until delivered */
#define SYN_MAX_TOM_WORD_BYTES  64     /* one multicast word (a client request) */
#define SYN_MAX_TOM_UNACKED     64     /* queued, not yet acknowledged, per peer (the first OOO on the wire) */
#define SYN_MAX_TOM_OOO         16     /* receive window (held ahead of a gap), per peer */
#define SYN_MAX_TOM_RESEND      16     /* retransmitted per peer per retransmit firing */
#define SYN_MAX_TOM_ECHO_BYTES  192    /* the signed data frame carried by an echo */
#define SYN_MAX_TOM_OUTBOX      256    /* requests waiting for room to be multicast */

/* Message types (protocol block 1). Fields, as Lua sees them:
 *   data {ts, stable, lseq, lack, word}   a multicast word
 *   ack  {ts, stable, lseq, lack}         clock/watermark announcement; lseq 0 = link ack only
 *   echo {ts, stable, lseq, lack, frame}  a data frame relayed as received */
enum { SYN_TOM_DATA = 0x0100, SYN_TOM_ACK = 0x0101, SYN_TOM_ECHO = 0x0102 };

/* Parameters, in the order of syn_tom_proto.params. */
enum {
  SYN_TOM_P_RETRANSMIT_MS, SYN_TOM_P_REJECT_REUSE, SYN_TOM_P_REJECT_BACKDATE,
  SYN_TOM_P_MAX_DRIFT, SYN_TOM_P_ECHO, SYN_TOM_NPARAMS
};

/* Reject / evidence reasons, in the order of syn_tom_proto.reasons. */
enum {
  SYN_TOM_R_DUPLICATE, SYN_TOM_R_QUEUE_FULL, SYN_TOM_R_BAD_FIELD, SYN_TOM_R_TS_REUSE,
  SYN_TOM_R_TS_BACKDATE, SYN_TOM_R_TS_FUTURE, SYN_TOM_R_EQUIVOCATION, SYN_TOM_R_BAD_ECHO,
  SYN_TOM_R_CLOCK_EXHAUSTED, SYN_TOM_R_BACKPRESSURE, SYN_TOM_R_OP_TOO_LONG, SYN_TOM_NREASONS
};

/* Timer ids. */
enum { SYN_TOM_TIMER_RETRANSMIT = 0, SYN_TOM_TIMER_PUMP = 1 };

#endif
