/* pbft.h — the names PBFT (Practical Byzantine Fault Tolerance, pbft.c)
 * shares with runtimes, tests and specs: its limits, message type ids,
 * parameter, reason and timer indexes. The protocol itself is
 * syn_pbft_proto (proto.h). Replicas are node ids 0..n-1, clients are ids
 * n..n+clients-1 of the same cluster (cfg->n counts replicas only). */
#ifndef SYN_PBFT_H
#define SYN_PBFT_H

#include "proto.h"

#define SYN_PBFT_MAX_REPLICAS    32            /* n; init refuses more (a view change must fit a frame) */
#define SYN_MAX_BATCH            100           /* requests in one pre-prepared batch */
#define SYN_PBFT_MAX_BATCH_BYTES (32u << 10)   /* one encoded batch */
#define SYN_PBFT_MAX_WINDOW      256           /* L: sequence numbers between the watermarks */
#define SYN_PBFT_MAX_SNAPS       8             /* own checkpoint snapshots kept above the stable one */
#define SYN_PBFT_CKPT_HISTORY    4             /* latest checkpoint votes kept per replica */
#define SYN_PBFT_CHUNK_BYTES     (256u << 10)  /* one state-transfer chunk */
#define SYN_PBFT_MAX_STATE_BYTES (256ull << 20)/* one checkpoint snapshot, app + reply cache */
#define SYN_PBFT_MAX_FETCH_ENTRIES 16          /* committed batches sent for one fetch */
#define SYN_PBFT_CLIENT_QUEUE_BYTES (256u << 10) /* ops waiting at one client */
#define SYN_PBFT_MAX_RESULT_BYTES 4096         /* one result (= SYN_MAX_APP_RESULT_BYTES) */
#define SYN_PBFT_PERSIST_STEP_BYTES (1u << 20) /* checkpoint snapshot bytes persisted in one step */
#define SYN_PBFT_CLIENT_TS_BLOCK 64            /* request timestamps a client reserves with one record */
#define SYN_PBFT_MAX_SEQ         (1ull << 50)  /* sequence numbers (a chunk record's key is seq * 1024 + chunk) */

/* Message types (protocol block 2). Fields, as Lua sees them:
 *   request     {client, ts, op}                 client -> replicas, signed by the client
 *   pre-prepare {view, seq, digest}              primary: digest = BLAKE2b-256 of the batch
 *   batch       {view, seq, digest, requests}    the batch body: (u32 len, request frame)*
 *   prepare     {view, seq, digest}
 *   commit      {view, seq, digest}
 *   reply       {view, seq, client, ts, result}  replica -> client
 *   checkpoint  {seq, digest}                    digest of the replicated state after seq
 *   view-change {view, stable, proof, prepared}  proof: checkpoint frames; prepared: P set
 *   new-view    {view, refs}                     refs: (u32 sender, digest of its view-change)*
 *   fetch       {have, seq, offset}              state transfer: what the asker has / wants
 *   state       {seq, offset, total, proof, chunk}
 *   entry       {view, seq, digest, batch, cert} a committed batch and 2f+1 commit frames
 *   need        {seq, digest}                    "send me this batch body"
 *   vc-fetch    {view, replica}                  "send me replica's view-change for view"
 *   relay       {frame}                          a stored view-change frame, as signed */
enum {
  SYN_PBFT_REQUEST = 0x0200, SYN_PBFT_PRE_PREPARE, SYN_PBFT_BATCH, SYN_PBFT_PREPARE,
  SYN_PBFT_COMMIT, SYN_PBFT_REPLY, SYN_PBFT_CHECKPOINT, SYN_PBFT_VIEW_CHANGE, SYN_PBFT_NEW_VIEW,
  SYN_PBFT_FETCH, SYN_PBFT_STATE, SYN_PBFT_ENTRY, SYN_PBFT_NEED, SYN_PBFT_VC_FETCH, SYN_PBFT_RELAY
};

/* Parameters, in the order of syn_pbft_proto.params. */
enum {
  SYN_PBFT_P_CHECKPOINT_INTERVAL, SYN_PBFT_P_WINDOW, SYN_PBFT_P_BATCH_SIZE, SYN_PBFT_P_BATCH_DELAY_MS,
  SYN_PBFT_P_VIEW_CHANGE_MS, SYN_PBFT_P_CLIENT_TIMEOUT_MS, SYN_PBFT_P_RETRANSMIT_MS, SYN_PBFT_NPARAMS
};

/* Reject / evidence reasons, in the order of syn_pbft_proto.reasons. */
enum {
  SYN_PBFT_R_BAD_REQUEST, SYN_PBFT_R_BAD_BATCH, SYN_PBFT_R_NOT_PRIMARY, SYN_PBFT_R_WRONG_VIEW,
  SYN_PBFT_R_OUT_OF_WINDOW, SYN_PBFT_R_EQUIVOCATION, SYN_PBFT_R_CONFLICT, SYN_PBFT_R_BAD_CHECKPOINT,
  SYN_PBFT_R_BAD_VIEW_CHANGE, SYN_PBFT_R_BAD_NEW_VIEW, SYN_PBFT_R_BAD_STATE, SYN_PBFT_R_BAD_ENTRY,
  SYN_PBFT_R_STALE, SYN_PBFT_R_QUEUE_FULL, SYN_PBFT_R_BAD_REPLY, SYN_PBFT_R_NOT_CLIENT,
  SYN_PBFT_R_DIVERGED, SYN_PBFT_R_BAD_DIGEST, SYN_PBFT_NREASONS
};

/* Durable record kinds (SYN_FX_PERSIST), numbered in the order recovery
 * needs them back: the view first, then what belongs to it, the checkpoint
 * and its snapshot chunks, what was signed per slot, the executed batches to
 * re-execute on top of the snapshot. Keys: VIEW 0; VIEW_CHANGE, NEW_VIEW,
 * OSET the view; CKPT the checkpoint seq; CHUNK seq * 1024 + chunk index;
 * PRE_PREPARE, PREPARE, COMMIT, PREPARED, EXEC the slot's seq; CLIENT 0. */
enum {
  SYN_PBFT_REC_VIEW = 1, SYN_PBFT_REC_VIEW_CHANGE, SYN_PBFT_REC_NEW_VIEW, SYN_PBFT_REC_OSET, SYN_PBFT_REC_CKPT,
  SYN_PBFT_REC_CHUNK, SYN_PBFT_REC_PRE_PREPARE, SYN_PBFT_REC_PREPARE, SYN_PBFT_REC_COMMIT, SYN_PBFT_REC_PREPARED,
  SYN_PBFT_REC_EXEC, SYN_PBFT_REC_CLIENT, SYN_PBFT_NREC
};

/* Timer ids. */
enum {
  SYN_PBFT_TIMER_BATCH = 0, SYN_PBFT_TIMER_VIEW = 1, SYN_PBFT_TIMER_TICK = 2,
  SYN_PBFT_TIMER_EXEC = 3, SYN_PBFT_TIMER_CLIENT = 4
};

#endif
