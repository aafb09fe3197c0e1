/* SSE-C keys for requests' `sse_key` fields: read from a key file as Toil reads --sseKey, and
 * wiped when done. The daemon never opens a key file for a client (Protos/WIRE.md). */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobstore_client.h"

int jobstore_read_sse_key(const char *path, uint8_t key[JOBSTORE_SSE_KEY_LENGTH], jobstore_status *status) {
    memset(status, 0, sizeof *status);
    int fd;
    do { fd = open(path, O_RDONLY | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        status->code = JOBSTORE_INVALID_ARGUMENT;
        snprintf(status->message, sizeof status->message, "Cannot read the SSE key file %s: %s.", path, strerror(errno));
        return -1;
    }
    struct stat st;
    uint8_t buf[JOBSTORE_SSE_KEY_LENGTH];
    size_t have = 0;
    if (fstat(fd, &st) == 0 && st.st_size == JOBSTORE_SSE_KEY_LENGTH) {
        while (have < sizeof buf) {
            ssize_t n = read(fd, buf + have, sizeof buf - have);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            have += (size_t)n;
        }
    }
    close(fd);
    if (have != JOBSTORE_SSE_KEY_LENGTH) {
        explicit_bzero(buf, sizeof buf);
        status->code = JOBSTORE_INVALID_ARGUMENT;
        snprintf(status->message, sizeof status->message, "Check that %s is the path to a real SSE key. (Key length %lld != 32)",
                 path, (long long)st.st_size);
        return -1;
    }
    memcpy(key, buf, JOBSTORE_SSE_KEY_LENGTH);
    explicit_bzero(buf, sizeof buf);
    return 0;
}

void jobstore_wipe_sse_key(uint8_t key[JOBSTORE_SSE_KEY_LENGTH]) {
    explicit_bzero(key, JOBSTORE_SSE_KEY_LENGTH);
}
