/* Tests of the C client against a real jobstored it starts itself. Prints "N passed, N failed". */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobstore_stub.h"

static int passed, failed;
static char scratch[256], socket_path[300], locator[320];
static pid_t daemon_pid;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); return 1; } } while (0)

static void launch_daemon(int delay_ms);

/* $JOBSTORED_BIN, else the debug build beside this checkout. */
static const char *daemon_binary(void) {
    const char *bin = getenv("JOBSTORED_BIN");
    static char fallback[512];
    if (!bin) {
        char cwd[400];
        snprintf(fallback, sizeof fallback, "%s/../../.build/debug/jobstored", getcwd(cwd, sizeof cwd) ? cwd : ".");
        bin = fallback;
    }
    return bin;
}

static void start_daemon(void) {
    strcpy(scratch, "/tmp/jobstore-ctest-XXXXXX");
    if (!mkdtemp(scratch)) { perror("mkdtemp"); exit(2); }
    snprintf(socket_path, sizeof socket_path, "%s/d.sock", scratch);
    snprintf(locator, sizeof locator, "local:%s/store", scratch);
    launch_daemon(0);
}

/* Starts jobstored on the scratch directory's socket, after `delay_ms` (in the child). */
static void launch_daemon(int delay_ms) {
    const char *bin = daemon_binary();
    daemon_pid = fork();
    if (daemon_pid == 0) {
        if (delay_ms) {
            struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
        char cache_dir[512];
        snprintf(cache_dir, sizeof cache_dir, "%s/cache", scratch);
        execl(bin, bin, "--socket", socket_path, "--no-fsync", "--log-level", "warning", "--cache-dir", cache_dir, (char *)NULL);
        perror(bin);
        _exit(127);
    }
    if (delay_ms) return;
    for (int i = 0; i < 500; i++) {
        if (access(socket_path, F_OK) == 0) return;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "jobstored (%s) did not start\n", bin);
    exit(2);
}

static void stop_daemon(void) {
    kill(daemon_pid, SIGTERM);
    waitpid(daemon_pid, NULL, 0);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", scratch);
}

/* A pattern source and a collecting sink for streams. */
typedef struct { size_t size, offset; } pattern_source;
static uint8_t pattern_byte(size_t i) { return (uint8_t)((i * 2654435761u) >> 13); }
static ssize_t read_pattern(void *ctx, uint8_t *buf, size_t cap) {
    pattern_source *p = ctx;
    size_t n = p->size - p->offset < cap ? p->size - p->offset : cap;
    for (size_t i = 0; i < n; i++) buf[i] = pattern_byte(p->offset + i);
    p->offset += n;
    return (ssize_t)n;
}
typedef struct { size_t count; int mismatch; size_t stop_after; } checking_sink;
static int check_pattern(void *ctx, const uint8_t *buf, size_t len) {
    checking_sink *s = ctx;
    for (size_t i = 0; i < len; i++) if (buf[i] != pattern_byte(s->count + i)) s->mismatch = 1;
    s->count += len;
    return s->stop_after && s->count >= s->stop_after;
}
static ssize_t cancel_midway(void *ctx, uint8_t *buf, size_t cap) {
    int *calls = ctx;
    if ((*calls)++ == 2) return -1;
    memset(buf, 'x', cap);
    return (ssize_t)cap;
}

static int test_hello_lists_the_same_methods(jobstore_conn *c) {
    Jobstore__HelloRequest req = JOBSTORE__HELLO_REQUEST__INIT;
    req.protocol_version = 1;
    req.client_name = "c-test";
    Jobstore__HelloResponse *resp = NULL;
    jobstore_status st;
    CHECK(jobstore_hello(c, &req, &resp, &st) == 0, "hello: %s", st.message);
    CHECK(resp->n_methods == JOBSTORE_METHOD_COUNT, "%zu methods", resp->n_methods);
    for (size_t i = 0; i < resp->n_methods; i++)
        CHECK(strcmp(resp->methods[i], jobstore_method_names[i]) == 0, "method %zu: %s", i, resp->methods[i]);
    jobstore__hello_response__free_unpacked(resp, NULL);
    return 0;
}

static int test_jobs_and_toil_errors(jobstore_conn *c) {
    jobstore_status st;
    Jobstore__JobBody body = JOBSTORE__JOB_BODY__INIT;
    body.locator = locator;
    body.job_id = "c-job";
    uint8_t bytes[] = {0, 1, 2, 255, 'p'};
    body.body.data = bytes;
    body.body.len = sizeof bytes;
    Jobstore__Empty *empty = NULL;
    CHECK(jobstore_create_job(c, &body, &empty, &st) == 0, "create: %s", st.message);
    jobstore__empty__free_unpacked(empty, NULL);
    Jobstore__JobRequest req = JOBSTORE__JOB_REQUEST__INIT;
    req.locator = locator;
    req.job_id = "c-job";
    Jobstore__LoadJobResponse *loaded = NULL;
    CHECK(jobstore_load_job(c, &req, &loaded, &st) == 0, "load: %s", st.message);
    CHECK(loaded->body.len == sizeof bytes && memcmp(loaded->body.data, bytes, sizeof bytes) == 0, "body differs");
    jobstore__load_job_response__free_unpacked(loaded, NULL);
    req.job_id = "missing";
    CHECK(jobstore_load_job(c, &req, &loaded, &st) == JOBSTORE_NOT_FOUND, "code %u", st.code);
    CHECK(st.kind == JOBSTORE__ERROR_KIND__NO_SUCH_JOB, "kind %u", st.kind);
    CHECK(strcmp(st.message, "The job 'missing' does not exist.") == 0, "message %s", st.message);
    CHECK(loaded == NULL, "no response on failure");
    return 0;
}

static int test_streams_round_trip(jobstore_conn *c) {
    size_t sizes[] = {0, 1, (1 << 20) - 1, 1 << 20, (3 << 20) + 5};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        jobstore_status st;
        Jobstore__WriteFileRequest w = JOBSTORE__WRITE_FILE_REQUEST__INIT;
        w.locator = locator;
        w.basename = "pattern.bin";
        pattern_source src = {sizes[k], 0};
        Jobstore__FileInfo *info = NULL;
        CHECK(jobstore_write_file_stream(c, &w, read_pattern, &src, &info, &st) == 0, "write: %s", st.message);
        CHECK(info->size == sizes[k], "size %llu", (unsigned long long)info->size);
        Jobstore__FileRequest r = JOBSTORE__FILE_REQUEST__INIT;
        r.locator = locator;
        r.file_id = info->file_id;
        checking_sink sink = {0, 0, 0};
        Jobstore__FileInfo *back = NULL;
        CHECK(jobstore_read_file_stream(c, &r, check_pattern, &sink, &back, &st) == 0, "read: %s", st.message);
        CHECK(sink.count == sizes[k] && !sink.mismatch, "read %zu bytes, mismatch %d", sink.count, sink.mismatch);
        jobstore__file_info__free_unpacked(back, NULL);
        jobstore__file_info__free_unpacked(info, NULL);
    }
    return 0;
}

static int test_descriptors_and_the_executable_bit(jobstore_conn *c) {
    char path[400], out[400];
    snprintf(path, sizeof path, "%s/tool.sh", scratch);
    snprintf(out, sizeof out, "%s/copy", scratch);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 1000; i++) fputs("#!/bin/sh\n", f);
    fclose(f);
    chmod(path, 0755);
    jobstore_status st;
    int fd = open(path, O_RDONLY);
    Jobstore__WriteFileRequest w = JOBSTORE__WRITE_FILE_REQUEST__INIT;
    w.locator = locator;
    Jobstore__FileInfo *info = NULL;
    CHECK(jobstore_write_file(c, &w, fd, &info, &st) == 0, "write_file: %s", st.message);
    close(fd);
    CHECK(info->executable && info->size == 10000, "executable %d size %llu", info->executable, (unsigned long long)info->size);
    int target = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    Jobstore__ReadFileRequest r = JOBSTORE__READ_FILE_REQUEST__INIT;
    r.locator = locator;
    r.file_id = info->file_id;
    Jobstore__ReadFileResponse *read_back = NULL;
    CHECK(jobstore_read_file(c, &r, target, &read_back, &st) == 0, "read_file: %s", st.message);
    close(target);
    struct stat sb;
    CHECK(stat(out, &sb) == 0 && sb.st_size == 10000, "copy size");
    CHECK(read_back->info && read_back->info->executable, "executable bit");
    jobstore__read_file_response__free_unpacked(read_back, NULL);
    jobstore__file_info__free_unpacked(info, NULL);
    return 0;
}

static int test_cancelled_upload_and_download(jobstore_conn *c) {
    jobstore_status st;
    Jobstore__WriteFileRequest w = JOBSTORE__WRITE_FILE_REQUEST__INIT;
    w.locator = locator;
    int calls = 0;
    Jobstore__FileInfo *info = NULL;
    CHECK(jobstore_write_file_stream(c, &w, cancel_midway, &calls, &info, &st) == JOBSTORE_CANCELLED,
          "cancelled upload: %u %s", st.code, st.message);
    CHECK(info == NULL, "nothing returned");
    pattern_source src = {5 << 20, 0};
    CHECK(jobstore_write_file_stream(c, &w, read_pattern, &src, &info, &st) == 0, "write: %s", st.message);
    Jobstore__FileRequest r = JOBSTORE__FILE_REQUEST__INIT;
    r.locator = locator;
    r.file_id = info->file_id;
    checking_sink sink = {0, 0, 1 << 20};
    Jobstore__FileInfo *back = NULL;
    int rc = jobstore_read_file_stream(c, &r, check_pattern, &sink, &back, &st);
    CHECK(rc == JOBSTORE_CANCELLED || rc == 0, "a download stopped by the reader: %d %s", rc, st.message);
    if (back) jobstore__file_info__free_unpacked(back, NULL);
    /* the connection still works */
    Jobstore__Empty e = JOBSTORE__EMPTY__INIT, *pong = NULL;
    CHECK(jobstore_ping(c, &e, &pong, &st) == 0, "ping after cancel: %s", st.message);
    jobstore__empty__free_unpacked(pong, NULL);
    jobstore__file_info__free_unpacked(info, NULL);
    return 0;
}

static int test_no_daemon_is_unavailable(jobstore_conn *c) {
    jobstore_status st;
    CHECK(jobstore_connect("/nonexistent/jobstored.sock", &st) == NULL, "connected to nothing");
    CHECK(st.code == JOBSTORE_UNAVAILABLE, "code %u", st.code);
    char buf[256];
    setenv("JOBSTORED_SOCKET", "/x/y.sock", 1);
    CHECK(strcmp(jobstore_default_socket_path(buf, sizeof buf), "/x/y.sock") == 0, "default path %s", buf);
    unsetenv("JOBSTORED_SOCKET");
    return 0;
}

/* Last: kill -9 the daemon, start it again 300 ms later; the connection comes back by itself. */
static int test_reconnects_after_the_daemon_restarts(jobstore_conn *c) {
    jobstore_status st;
    Jobstore__JobBody job = JOBSTORE__JOB_BODY__INIT;
    job.locator = locator;
    job.job_id = "kept";
    job.body.data = (uint8_t *)"before";
    job.body.len = 6;
    Jobstore__Empty *e = NULL;
    CHECK(jobstore_create_job(c, &job, &e, &st) == 0, "create_job: %s", st.message);
    jobstore__empty__free_unpacked(e, NULL);
    kill(daemon_pid, SIGKILL);
    waitpid(daemon_pid, NULL, 0);
    unlink(socket_path);
    launch_daemon(300);
    Jobstore__Empty ping = JOBSTORE__EMPTY__INIT;
    Jobstore__Empty *pong = NULL;
    int first = jobstore_ping(c, &ping, &pong, &st);  /* may see the dead connection */
    if (first == 0) jobstore__empty__free_unpacked(pong, NULL);
    else CHECK(st.code == JOBSTORE_UNAVAILABLE, "first call after the kill: %s", st.message);
    Jobstore__JobRequest load = JOBSTORE__JOB_REQUEST__INIT;
    load.locator = locator;
    load.job_id = "kept";
    Jobstore__LoadJobResponse *loaded = NULL;
    CHECK(jobstore_load_job(c, &load, &loaded, &st) == 0, "load_job after the restart: %s", st.message);
    CHECK(loaded->body.len == 6 && memcmp(loaded->body.data, "before", 6) == 0, "the job survived");
    jobstore__load_job_response__free_unpacked(loaded, NULL);
    return 0;
}

/* SSE-C keys: read from a file as Toil does, refused by length, and on an aws: store (when the
 * test S3 server is there: tools/test starts it) required to read what was written with one. */
static int write_file_bytes(const char *path, const char *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = fwrite(bytes, 1, len, f);
    return fclose(f) == 0 && n == len ? 0 : -1;
}

static pid_t start_s3_daemon(const char *sock) {
    const char *bin = daemon_binary();
    pid_t pid = fork();
    if (pid == 0) {
        setenv("AWS_ACCESS_KEY_ID", getenv("JOBSTORE_TEST_S3_ACCESS_KEY"), 1);
        setenv("AWS_SECRET_ACCESS_KEY", getenv("JOBSTORE_TEST_S3_SECRET_KEY"), 1);
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
        char cache_dir[512];
        snprintf(cache_dir, sizeof cache_dir, "%s/s3cache", scratch);
        execl(bin, bin, "--socket", sock, "--no-fsync", "--log-level", "error", "--cache-dir", cache_dir,
              "--endpoint", getenv("JOBSTORE_TEST_S3_ENDPOINT"), (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return pid;
}

static int sse_calls(jobstore_conn *s3, const char *aws, uint8_t *key) {
    jobstore_status st;
    Jobstore__StoreRequest init = JOBSTORE__STORE_REQUEST__INIT;
    init.locator = (char *)aws;
    init.sse_key.data = key;
    init.sse_key.len = JOBSTORE_SSE_KEY_LENGTH;
    Jobstore__Empty *e = NULL;
    CHECK(jobstore_initialize(s3, &init, &e, &st) == 0, "initialize with a key: %s", st.message);
    jobstore__empty__free_unpacked(e, NULL);
    Jobstore__JobBody body = JOBSTORE__JOB_BODY__INIT;
    body.locator = (char *)aws;
    body.job_id = "secret-job";
    body.body.data = (uint8_t *)"ciphertext at rest";
    body.body.len = 18;
    body.sse_key = init.sse_key;
    CHECK(jobstore_create_job(s3, &body, &e, &st) == 0, "create_job with a key: %s", st.message);
    jobstore__empty__free_unpacked(e, NULL);
    Jobstore__JobRequest load = JOBSTORE__JOB_REQUEST__INIT;
    load.locator = (char *)aws;
    load.job_id = "secret-job";
    load.sse_key = init.sse_key;
    Jobstore__LoadJobResponse *loaded = NULL;
    CHECK(jobstore_load_job(s3, &load, &loaded, &st) == 0, "load_job with the key: %s", st.message);
    CHECK(loaded->body.len == 18 && memcmp(loaded->body.data, "ciphertext at rest", 18) == 0, "the body comes back");
    jobstore__load_job_response__free_unpacked(loaded, NULL);
    load.sse_key.len = 0;
    load.sse_key.data = NULL;
    CHECK(jobstore_load_job(s3, &load, &loaded, &st) == JOBSTORE_PERMISSION_DENIED, "a keyless load must fail: %u", st.code);
    CHECK(st.kind == JOBSTORE__ERROR_KIND__BAD_ENCRYPTION_KEY, "kind %u", st.kind);
    CHECK(strstr(st.message, "Your AWS encryption key is most likely configured incorrectly") != NULL, "Toil's text: %s", st.message);
    return 0;
}

static int test_sse_keys_from_files_and_on_the_wire(jobstore_conn *c) {
    jobstore_status st;
    char good[400], short_key[400];
    snprintf(good, sizeof good, "%s/sse.key", scratch);
    snprintf(short_key, sizeof short_key, "%s/short.key", scratch);
    CHECK(write_file_bytes(good, "01234567890123456789012345678901", 32) == 0, "write key");
    CHECK(write_file_bytes(short_key, "0123456789012345678901234567890", 31) == 0, "write short key");
    uint8_t key[JOBSTORE_SSE_KEY_LENGTH];
    CHECK(jobstore_read_sse_key(good, key, &st) == 0, "read key: %s", st.message);
    CHECK(memcmp(key, "01234567890123456789012345678901", 32) == 0, "the key's bytes");
    CHECK(jobstore_read_sse_key(short_key, key, &st) != 0 && st.code == JOBSTORE_INVALID_ARGUMENT, "a 31-byte key file is refused");
    char expected[600];
    snprintf(expected, sizeof expected, "Check that %s is the path to a real SSE key. (Key length 31 != 32)", short_key);
    CHECK(strcmp(st.message, expected) == 0, "Toil's text: %s", st.message);
    CHECK(jobstore_read_sse_key(good, key, &st) == 0, "read key: %s", st.message);
    /* A 31-byte key on the wire: INVALID_ARGUMENT from the daemon, before any storage. */
    Jobstore__JobRequest load = JOBSTORE__JOB_REQUEST__INIT;
    load.locator = locator;
    load.job_id = "whatever";
    load.sse_key.data = key;
    load.sse_key.len = 31;
    Jobstore__LoadJobResponse *loaded = NULL;
    CHECK(jobstore_load_job(c, &load, &loaded, &st) == JOBSTORE_INVALID_ARGUMENT, "a short key on the wire: %u %s", st.code, st.message);
    CHECK(strstr(st.message, "sse_key must be exactly 32 bytes") != NULL, "%s", st.message);
    int bad = 0;
    if (getenv("JOBSTORE_TEST_S3_ENDPOINT") && getenv("JOBSTORE_TEST_S3_ACCESS_KEY") && getenv("JOBSTORE_TEST_S3_SECRET_KEY")) {
        char sock[400], aws[100];
        snprintf(sock, sizeof sock, "%s/s3.sock", scratch);
        snprintf(aws, sizeof aws, "aws:us-east-1:jobstore-c-%d", (int)getpid());
        pid_t pid = start_s3_daemon(sock);
        jobstore_conn *s3 = jobstore_connect(sock, &st);
        if (!s3) {
            bad = 1;
            fprintf(stderr, "  connect to the S3 daemon: %s\n", st.message);
        } else {
            bad = sse_calls(s3, aws, key);
            Jobstore__StoreRequest destroy = JOBSTORE__STORE_REQUEST__INIT;
            destroy.locator = aws;
            Jobstore__Empty *e = NULL;
            if (jobstore_destroy(s3, &destroy, &e, &st) == 0) jobstore__empty__free_unpacked(e, NULL);
            jobstore_close(s3);
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    } else {
        fprintf(stderr, "  JOBSTORE_TEST_S3_* not set: SSE-C on S3 not exercised\n");
        bad = 1;
    }
    jobstore_wipe_sse_key(key);
    for (size_t i = 0; i < sizeof key; i++) CHECK(key[i] == 0, "the key is wiped");
    return bad;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    start_daemon();
    jobstore_status st;
    jobstore_conn *c = jobstore_connect(socket_path, &st);
    if (!c) { fprintf(stderr, "connect: %s\n", st.message); stop_daemon(); return 2; }
    Jobstore__StoreRequest init = JOBSTORE__STORE_REQUEST__INIT;
    init.locator = locator;
    Jobstore__Empty *e = NULL;
    if (jobstore_initialize(c, &init, &e, &st) != 0) { fprintf(stderr, "initialize: %s\n", st.message); return 2; }
    jobstore__empty__free_unpacked(e, NULL);
    struct { const char *name; int (*fn)(jobstore_conn *); } tests[] = {
        {"hello_lists_the_same_methods", test_hello_lists_the_same_methods},
        {"jobs_and_toil_errors", test_jobs_and_toil_errors},
        {"streams_round_trip", test_streams_round_trip},
        {"descriptors_and_the_executable_bit", test_descriptors_and_the_executable_bit},
        {"cancelled_upload_and_download", test_cancelled_upload_and_download},
        {"no_daemon_is_unavailable", test_no_daemon_is_unavailable},
        {"reconnects_after_the_daemon_restarts", test_reconnects_after_the_daemon_restarts},
        {"sse_keys_from_files_and_on_the_wire", test_sse_keys_from_files_and_on_the_wire},
    };
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int bad = tests[i].fn(c);
        printf("%s %s\n", bad ? "FAIL" : "ok  ", tests[i].name);
        if (bad) failed++; else passed++;
    }
    jobstore_close(c);
    stop_daemon();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
