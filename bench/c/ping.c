/* Empty-call round trip from C: a socketpair ping-pong between two processes (the floor: 12-byte
 * frames, one write and one read each way) and jobstore_ping through the C client, interleaved.
 * usage: ping SOCKET CALLS [ECHO_CPU]   -> "floor p50 p99" and "c-client p50 p99" in microseconds
 * ECHO_CPU pins the floor's echo process to that CPU, so that it sits where the daemon was pinned
 * (bench/polyglot.sh compares floor and clients under the same placement). */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jobstore_stub.h"

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, double *s, int n) {
    qsort(s, n, sizeof *s, cmp);
    printf("%s %.1f %.1f\n", name, s[n / 2], s[(int)(n * 0.99)]);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int calls = atoi(argv[2]);
    double *floor_s = calloc(calls, sizeof(double)), *client_s = calloc(calls, sizeof(double));
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t child = fork();
    if (child == 0) {
        char buf[12];
        if (argc > 3) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(atoi(argv[3]), &set);
            if (sched_setaffinity(0, sizeof set, &set) != 0) { perror("sched_setaffinity"); _exit(1); }
        }
        close(sv[0]);
        for (;;) {
            ssize_t got = 0;
            while (got < 12) { ssize_t k = read(sv[1], buf + got, 12 - got); if (k <= 0) _exit(0); got += k; }
            if (write(sv[1], buf, 12) != 12) _exit(0);
        }
    }
    close(sv[1]);
    jobstore_status st;
    jobstore_conn *c = jobstore_connect(argv[1], &st);
    if (!c) { fprintf(stderr, "%s\n", st.message); return 1; }
    Jobstore__Empty e = JOBSTORE__EMPTY__INIT;
    char buf[12] = {0};
    int rounds = 4, per = calls / rounds, k = 0, j = 0;
    for (int w = 0; w < 1000; w++) {  /* warm-up */
        Jobstore__Empty *r = NULL;
        jobstore_ping(c, &e, &r, &st);
        jobstore__empty__free_unpacked(r, NULL);
    }
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < per; i++) {
            double t = now_us();
            if (write(sv[0], buf, 12) != 12) return 1;
            ssize_t got = 0;
            while (got < 12) got += read(sv[0], buf + got, 12 - got);
            floor_s[k++] = now_us() - t;
        }
        for (int i = 0; i < per; i++) {
            Jobstore__Empty *r = NULL;
            double t = now_us();
            if (jobstore_ping(c, &e, &r, &st) != 0) { fprintf(stderr, "%s\n", st.message); return 1; }
            client_s[j++] = now_us() - t;
            jobstore__empty__free_unpacked(r, NULL);
        }
    }
    close(sv[0]);
    waitpid(child, NULL, 0);
    report("floor", floor_s, k);
    report("c-client", client_s, j);
    jobstore_close(c);
    return 0;
}
