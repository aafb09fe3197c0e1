/* The C client's transport: frames, SCM_RIGHTS, the call shapes of Protos/WIRE.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "jobstore.pb-c.h"
#include "jobstore_client.h"

enum { REQUEST = 1, RESPONSE = 2, DATA = 3, END = 4, CANCEL = 5 };
enum { HEADER_SIZE = 12, MAX_DATA = 1 << 20, MAX_MESSAGE = 16 << 20 };

enum { READ_BUFFER = 64 << 10 };
/* Requests and answers up to this size are built and read on the stack. */
enum { SMALL_MESSAGE = 512 };

struct jobstore_conn {
    int fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int reconnect_ms;
    uint32_t next_id;
    int broken;
    pthread_mutex_t lock;
    /* Bytes received but not yet consumed: a frame's header and payload usually arrive in one
     * recv, so reading through this buffer halves the system calls per answer. */
    uint8_t rbuf[READ_BUFFER];
    size_t rpos, rlen;
};

static int fail(jobstore_status *st, uint32_t code, const char *format, ...) {
    if (st) {
        st->code = code;
        st->kind = 0;
        va_list args;
        va_start(args, format);
        vsnprintf(st->message, sizeof st->message, format, args);
        va_end(args);
    }
    return (int)code;
}

const char *jobstore_default_socket_path(char *buf, size_t cap) {
    const char *explicit_path = getenv("JOBSTORED_SOCKET");
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    if (explicit_path && *explicit_path)
        snprintf(buf, cap, "%s", explicit_path);
    else if (runtime && *runtime)
        snprintf(buf, cap, "%s/jobstored.sock", runtime);
    else
        snprintf(buf, cap, "/tmp/jobstored-%u/jobstored.sock", (unsigned)getuid());
    return buf;
}

/* A connected socket to `path`, or -1 with errno set. */
static int open_socket(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

jobstore_conn *jobstore_connect(const char *path, jobstore_status *status) {
    char defaults[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if (!path) path = jobstore_default_socket_path(defaults, sizeof defaults);
    if (strlen(path) >= sizeof defaults) {
        fail(status, JOBSTORE_INVALID_ARGUMENT, "socket path too long: %s", path);
        return NULL;
    }
    int fd = open_socket(path);
    if (fd < 0) {
        fail(status, JOBSTORE_UNAVAILABLE, "cannot connect to jobstored at %s: %s", path, strerror(errno));
        return NULL;
    }
    jobstore_conn *conn = calloc(1, sizeof *conn);
    if (!conn) {
        close(fd);
        fail(status, JOBSTORE_RESOURCE_EXHAUSTED, "out of memory");
        return NULL;
    }
    conn->fd = fd;
    strcpy(conn->path, path);
    conn->reconnect_ms = 30000;
    pthread_mutex_init(&conn->lock, NULL);
    return conn;
}

void jobstore_set_reconnect_timeout(jobstore_conn *conn, int milliseconds) {
    if (conn) conn->reconnect_ms = milliseconds < 0 ? 0 : milliseconds;
}

/* Replaces a broken connection, retrying while the daemon is away (a restart, an upgrade).
 * Called with the lock held. */
static int reconnect(jobstore_conn *c, jobstore_status *st) {
    int waited = 0, delay = 20;
    for (;;) {
        int fd = open_socket(c->path);
        if (fd >= 0) {
            close(c->fd);
            c->fd = fd;
            c->rpos = c->rlen = 0;
            c->broken = 0;
            return 0;
        }
        if (waited >= c->reconnect_ms)
            return fail(st, JOBSTORE_UNAVAILABLE, "cannot reconnect to jobstored at %s: %s", c->path, strerror(errno));
        struct timespec ts = {delay / 1000, (delay % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        waited += delay;
        delay = delay * 2 > 500 ? 500 : delay * 2;
    }
}

void jobstore_close(jobstore_conn *conn) {
    if (!conn) return;
    close(conn->fd);
    pthread_mutex_destroy(&conn->lock);
    free(conn);
}

static void put_header(uint8_t *h, uint32_t length, uint32_t call, uint16_t code, uint8_t type, uint8_t flags) {
    h[0] = length >> 24; h[1] = length >> 16; h[2] = length >> 8; h[3] = length;
    h[4] = call >> 24; h[5] = call >> 16; h[6] = call >> 8; h[7] = call;
    h[8] = code >> 8; h[9] = code;
    h[10] = type; h[11] = flags;
}

/* Sends one frame (header + payload), with `fd` as SCM_RIGHTS when >= 0. */
static int send_frame(jobstore_conn *c, uint32_t call, uint16_t code, uint8_t type, const uint8_t *payload,
                      size_t length, int fd) {
    uint8_t header[HEADER_SIZE];
    put_header(header, (uint32_t)length, call, code, type, fd >= 0 ? 1 : 0);
    struct iovec iov[2] = {{header, HEADER_SIZE}, {(void *)payload, length}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = length ? 2 : 1};
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    size_t total = HEADER_SIZE + length, sent = 0;
    while (sent < total) {
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        sent += (size_t)n;
        msg.msg_control = NULL;  /* the descriptor went with the first byte */
        msg.msg_controllen = 0;
        while (msg.msg_iovlen > 0 && (size_t)n >= msg.msg_iov[0].iov_len) {
            n -= (ssize_t)msg.msg_iov[0].iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen > 0) {
            msg.msg_iov[0].iov_base = (uint8_t *)msg.msg_iov[0].iov_base + n;
            msg.msg_iov[0].iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Frees `p` unless it is the caller's stack buffer `small`. */
static void release(uint8_t *p, uint8_t *small) {
    if (p != small) free(p);
}

static int recv_exact(jobstore_conn *c, uint8_t *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        if (c->rpos < c->rlen) {
            size_t take = c->rlen - c->rpos < n - got ? c->rlen - c->rpos : n - got;
            memcpy(buf + got, c->rbuf + c->rpos, take);
            c->rpos += take;
            got += take;
            continue;
        }
        int direct = n - got >= READ_BUFFER;  /* a large payload goes straight to its place */
        ssize_t k = direct ? recv(c->fd, buf + got, n - got, 0) : recv(c->fd, c->rbuf, READ_BUFFER, 0);
        if (k == 0) return -1;
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (direct) {
            got += (size_t)k;
        } else {
            c->rpos = 0;
            c->rlen = (size_t)k;
        }
    }
    return 0;
}

static int broken(jobstore_conn *c, jobstore_status *st, const char *what) {
    c->broken = 1;
    return fail(st, JOBSTORE_UNAVAILABLE, "connection to jobstored lost (%s): %s", what,
                errno ? strerror(errno) : "closed");
}

int jobstore_call(jobstore_conn *c, uint16_t method, const ProtobufCMessage *request, int fd,
                  jobstore_reader read, void *read_ctx, jobstore_writer write, void *write_ctx,
                  const ProtobufCMessageDescriptor *response_descriptor, ProtobufCMessage **response,
                  jobstore_status *st) {
    if (response) *response = NULL;
    if (!c) return fail(st, JOBSTORE_INVALID_ARGUMENT, "no connection");
    size_t size = protobuf_c_message_get_packed_size(request);
    if (size > MAX_MESSAGE) return fail(st, JOBSTORE_INVALID_ARGUMENT, "request of %zu bytes exceeds 16 MiB", size);
    /* Small messages (most requests and answers) live on the stack: no malloc per call. */
    uint8_t small_request[SMALL_MESSAGE], small_body[SMALL_MESSAGE];
    uint8_t *payload = size <= SMALL_MESSAGE ? small_request : malloc(size);
    if (!payload) return fail(st, JOBSTORE_RESOURCE_EXHAUSTED, "out of memory");
    protobuf_c_message_pack(request, payload);

    pthread_mutex_lock(&c->lock);
    int result;
    uint8_t *chunk = NULL;
    if (c->broken && (result = reconnect(c, st)) != 0) goto done;
    uint32_t call = ++c->next_id ? c->next_id : ++c->next_id;
    errno = 0;
    if (send_frame(c, call, method, REQUEST, payload, size, fd) != 0) {
        result = broken(c, st, "send");
        goto done;
    }
    if (read) {
        chunk = malloc(MAX_DATA);
        if (!chunk) {
            send_frame(c, call, 0, CANCEL, NULL, 0, -1);
        } else {
            for (;;) {
                ssize_t n = read(read_ctx, chunk, MAX_DATA);
                int ok = n < 0 ? send_frame(c, call, 0, CANCEL, NULL, 0, -1)
                       : n == 0 ? send_frame(c, call, 0, END, NULL, 0, -1)
                                : send_frame(c, call, 0, DATA, chunk, (size_t)n, -1);
                if (ok != 0) {
                    result = broken(c, st, "send");
                    goto done;
                }
                if (n <= 0) break;
            }
        }
    }
    int cancelled = 0;
    for (;;) {
        uint8_t header[HEADER_SIZE];
        errno = 0;
        if (recv_exact(c, header, HEADER_SIZE) != 0) {
            result = broken(c, st, "receive");
            goto done;
        }
        uint32_t length = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
        uint32_t id = (uint32_t)header[4] << 24 | (uint32_t)header[5] << 16 | (uint32_t)header[6] << 8 | header[7];
        uint16_t code = (uint16_t)(header[8] << 8 | header[9]);
        uint8_t type = header[10];
        if (length > MAX_MESSAGE) {
            result = broken(c, st, "oversized frame");
            goto done;
        }
        uint8_t *body = length <= SMALL_MESSAGE ? small_body : malloc(length);
        if (!body || recv_exact(c, body, length) != 0) {
            release(body, small_body);
            result = broken(c, st, "receive");
            goto done;
        }
        if (id != call) {  /* a refusal (call 0) or a stray frame */
            if (id == 0 && type == RESPONSE) {
                Jobstore__Status *s = jobstore__status__unpack(NULL, length, body);
                result = fail(st, code, "%s", s && s->message ? s->message : "refused");
                if (s) jobstore__status__free_unpacked(s, NULL);
                release(body, small_body);
                c->broken = 1;
                goto done;
            }
            release(body, small_body);
            continue;
        }
        if (type == DATA) {
            if (!cancelled && write && write(write_ctx, body, length) != 0) {
                cancelled = 1;
                send_frame(c, call, 0, CANCEL, NULL, 0, -1);
            }
            release(body, small_body);
            continue;
        }
        if (type != RESPONSE) {
            release(body, small_body);
            continue;
        }
        if (code == 0) {
            ProtobufCMessage *m = protobuf_c_message_unpack(response_descriptor, NULL, length, body);
            release(body, small_body);
            if (!m) {
                result = fail(st, JOBSTORE_INTERNAL, "undecodable response");
                goto done;
            }
            if (response) *response = m; else protobuf_c_message_free_unpacked(m, NULL);
            if (st) { st->code = 0; st->kind = 0; st->message[0] = 0; }
            result = 0;
        } else {
            Jobstore__Status *s = jobstore__status__unpack(NULL, length, body);
            release(body, small_body);
            result = fail(st, code, "%s", s && s->message ? s->message : jobstore_code_name(code));
            if (st && s) st->kind = (uint32_t)s->kind;
            if (s) jobstore__status__free_unpacked(s, NULL);
        }
        break;
    }
done:
    pthread_mutex_unlock(&c->lock);
    free(chunk);
    release(payload, small_request);
    return result;
}
