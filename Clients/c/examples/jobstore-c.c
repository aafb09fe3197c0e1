/* jobstore-c: a small command-line tool over the C client, and an example of its use.
 *   jobstore-c [-s SOCKET] put LOCATOR [BASENAME] < data    prints the new file id
 *   jobstore-c [-s SOCKET] get LOCATOR FILE_ID > data
 *   jobstore-c [-s SOCKET] put-fd LOCATOR PATH                 the daemon reads PATH via a passed fd
 *   jobstore-c [-s SOCKET] create-job LOCATOR JOB_ID < body
 *   jobstore-c [-s SOCKET] load-job LOCATOR JOB_ID > body
 *   jobstore-c [-s SOCKET] ping
 * Exit status: 0, or the daemon's status code. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobstore_stub.h"

static ssize_t read_stdin(void *ctx, uint8_t *buf, size_t cap) {
    (void)ctx;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, cap);
        if (n >= 0) return n;
    }
}

static int write_stdout(void *ctx, const uint8_t *buf, size_t len) {
    (void)ctx;
    return fwrite(buf, 1, len, stdout) == len ? 0 : 1;
}

static int usage(void) {
    fprintf(stderr, "usage: jobstore-c [-s SOCKET] put|get|put-fd|create-job|load-job|ping ...\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *socket_path = NULL;
    int a = 1;
    if (a + 1 < argc && strcmp(argv[a], "-s") == 0) {
        socket_path = argv[a + 1];
        a += 2;
    }
    if (a >= argc) return usage();
    const char *cmd = argv[a++];
    jobstore_status st;
    jobstore_conn *c = jobstore_connect(socket_path, &st);
    if (!c) {
        fprintf(stderr, "jobstore-c: %s\n", st.message);
        return (int)st.code;
    }
    int rc = 2;
    if (strcmp(cmd, "ping") == 0) {
        Jobstore__Empty req = JOBSTORE__EMPTY__INIT;
        Jobstore__Empty *resp = NULL;
        rc = jobstore_ping(c, &req, &resp, &st);
        if (resp) jobstore__empty__free_unpacked(resp, NULL);
    } else if (strcmp(cmd, "put") == 0 && a < argc) {
        Jobstore__WriteFileRequest req = JOBSTORE__WRITE_FILE_REQUEST__INIT;
        req.locator = argv[a];
        if (a + 1 < argc) req.basename = argv[a + 1];
        Jobstore__FileInfo *info = NULL;
        rc = jobstore_write_file_stream(c, &req, read_stdin, NULL, &info, &st);
        if (rc == 0) {
            printf("%s\n", info->file_id);
            jobstore__file_info__free_unpacked(info, NULL);
        }
    } else if (strcmp(cmd, "put-fd") == 0 && a + 1 < argc) {
        int fd = open(argv[a + 1], O_RDONLY | O_CLOEXEC);
        if (fd < 0) { perror(argv[a + 1]); jobstore_close(c); return 2; }
        Jobstore__WriteFileRequest req = JOBSTORE__WRITE_FILE_REQUEST__INIT;
        req.locator = argv[a];
        Jobstore__FileInfo *info = NULL;
        rc = jobstore_write_file(c, &req, fd, &info, &st);
        close(fd);
        if (rc == 0) {
            printf("%s\n", info->file_id);
            jobstore__file_info__free_unpacked(info, NULL);
        }
    } else if (strcmp(cmd, "get") == 0 && a + 1 < argc) {
        Jobstore__FileRequest req = JOBSTORE__FILE_REQUEST__INIT;
        req.locator = argv[a];
        req.file_id = argv[a + 1];
        Jobstore__FileInfo *info = NULL;
        rc = jobstore_read_file_stream(c, &req, write_stdout, NULL, &info, &st);
        if (info) jobstore__file_info__free_unpacked(info, NULL);
    } else if (strcmp(cmd, "create-job") == 0 && a + 1 < argc) {
        size_t cap = 1 << 16, len = 0;
        uint8_t *body = malloc(cap);
        ssize_t n;
        while (body && (n = read(STDIN_FILENO, body + len, cap - len)) > 0) {
            len += (size_t)n;
            if (len == cap) body = realloc(body, cap *= 2);
        }
        Jobstore__JobBody req = JOBSTORE__JOB_BODY__INIT;
        req.locator = argv[a];
        req.job_id = argv[a + 1];
        req.body.data = body;
        req.body.len = len;
        Jobstore__Empty *resp = NULL;
        rc = jobstore_create_job(c, &req, &resp, &st);
        if (resp) jobstore__empty__free_unpacked(resp, NULL);
        free(body);
    } else if (strcmp(cmd, "load-job") == 0 && a + 1 < argc) {
        Jobstore__JobRequest req = JOBSTORE__JOB_REQUEST__INIT;
        req.locator = argv[a];
        req.job_id = argv[a + 1];
        Jobstore__LoadJobResponse *resp = NULL;
        rc = jobstore_load_job(c, &req, &resp, &st);
        if (rc == 0) {
            fwrite(resp->body.data, 1, resp->body.len, stdout);
            jobstore__load_job_response__free_unpacked(resp, NULL);
        }
    } else {
        jobstore_close(c);
        return usage();
    }
    if (rc != 0) fprintf(stderr, "jobstore-c: %s: %s\n", jobstore_code_name(st.code), st.message);
    jobstore_close(c);
    return rc;
}
