/*
 * jobstore C client: a blocking connection to jobstored (the per-node daemon that serves Toil
 * job stores) over its Unix socket. The per-rpc functions (jobstore_load_job, ...) are
 * generated from Protos/jobstore.proto into generated/jobstore_stub.h; messages are
 * protobuf-c's (generated/jobstore.pb-c.h). See Protos/WIRE.md for the protocol.
 *
 * Threads: a connection runs one call at a time (calls from several threads are serialized);
 * open one connection per thread for parallel calls.
 *
 *     jobstore_status st;
 *     jobstore_conn *c = jobstore_connect(NULL, &st);          // default socket path
 *     Jobstore__JobRequest req = JOBSTORE__JOB_REQUEST__INIT;
 *     req.locator = "local:/tmp/store"; req.job_id = "j1";
 *     Jobstore__LoadJobResponse *resp = NULL;
 *     if (jobstore_load_job(c, &req, &resp, &st) == 0) { ... resp->body ...;
 *         jobstore__load_job_response__free_unpacked(resp, NULL); }
 *     else fprintf(stderr, "%s: %s\n", jobstore_code_name(st.code), st.message);
 *     jobstore_close(c);
 */
#ifndef JOBSTORE_CLIENT_H
#define JOBSTORE_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <protobuf-c/protobuf-c.h>

#include "jobstore_codes.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Why a call failed: the status code, Toil's exception kind (Jobstore__ErrorKind) and text. */
typedef struct {
    uint32_t code;
    uint32_t kind;
    char message[1024];
} jobstore_status;

/** Supplies upload bytes: fill up to `cap` bytes of `buf`; return the count, 0 at the end, or
 *  < 0 to cancel the call (nothing is stored). */
typedef ssize_t (*jobstore_reader)(void *ctx, uint8_t *buf, size_t cap);

/** Receives download bytes in order; return nonzero to cancel the call. */
typedef int (*jobstore_writer)(void *ctx, const uint8_t *buf, size_t len);

typedef struct jobstore_conn jobstore_conn;

/** The daemon's default socket: $JOBSTORED_SOCKET, $XDG_RUNTIME_DIR/jobstored.sock, or
 *  /tmp/jobstored-UID/jobstored.sock. Writes into `buf`; returns it. */
const char *jobstore_default_socket_path(char *buf, size_t cap);

/** Connects (path NULL: the default). NULL on failure, with `status` saying why. */
jobstore_conn *jobstore_connect(const char *path, jobstore_status *status);

void jobstore_close(jobstore_conn *conn);

/* When the daemon goes away (a restart, an upgrade), the call that saw it fails with
 * JOBSTORE_UNAVAILABLE and the next call connects again, waiting up to this many milliseconds
 * (default 30000) for the daemon to be back. Calls are not sent twice by the library: the
 * caller decides whether to repeat the one that failed. */
void jobstore_set_reconnect_timeout(jobstore_conn *conn, int milliseconds);

/* Status codes (enum jobstore_code), their names (jobstore_code_name) and each Toil kind's
 * status (jobstore_kind_status): generated from the proto into jobstore_codes.h. */

/** SSE-C (Toil's --sseKey): a request's `sse_key` carries the 32 key bytes with each call that
 *  touches data; the daemon never opens a key file for a client. Read the key when needed:
 *      uint8_t key[JOBSTORE_SSE_KEY_LENGTH];
 *      if (jobstore_read_sse_key(path, key, &st) != 0) { ... st.message ... }
 *      req.sse_key.data = key; req.sse_key.len = JOBSTORE_SSE_KEY_LENGTH;
 *      ... the call ...
 *      jobstore_wipe_sse_key(key);                               // leave no copy behind
 */
#define JOBSTORE_SSE_KEY_LENGTH 32

/** Reads a key file that must hold exactly 32 bytes. 0, or -1 with JOBSTORE_INVALID_ARGUMENT and
 *  Toil's text in `status` (the path, never the content). */
int jobstore_read_sse_key(const char *path, uint8_t key[JOBSTORE_SSE_KEY_LENGTH], jobstore_status *status);

/** Zeroes a key (explicit_bzero: not optimized away). */
void jobstore_wipe_sse_key(uint8_t key[JOBSTORE_SSE_KEY_LENGTH]);

/** One call of any shape; the generated functions call this. Returns the status code. */
int jobstore_call(jobstore_conn *conn, uint16_t method, const ProtobufCMessage *request, int fd,
                  jobstore_reader read, void *read_ctx, jobstore_writer write, void *write_ctx,
                  const ProtobufCMessageDescriptor *response_descriptor, ProtobufCMessage **response,
                  jobstore_status *status);

#ifdef __cplusplus
}
#endif
#endif
