/* The load generator of bench/echo.sh: the same client load for every echo server.
 *
 *   echo_load PORT persistent CONNS TRIPS SIZE   CONNS connections at once, each TRIPS round
 *                                                trips of SIZE bytes; prints round trips/s
 *   echo_load PORT churn TOTAL CONCURRENCY [IDLE]  TOTAL connections of one 16-byte round trip,
 *                                                at most CONCURRENCY at once; prints conns/s.
 *                                                With IDLE, that many connections are opened
 *                                                first (one round trip each, so the server has
 *                                                a child for each) and held open, idle, until
 *                                                the churn is over: the cost of live children.
 *
 * One thread per concurrent connection, blocking sockets, TCP_NODELAY. Every reply is read
 * whole and checked (upper-cased); any error or mismatch makes the run fail (exit 1).
 * Output: one line "<rate> <seconds> <errors>".
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port, trips, size;
static atomic_int errors;
static atomic_int next_conn;
static int total;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int open_conn(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One request of `n` bytes and its whole reply; 0 when the reply is right. */
static int round_trip(int fd, const char *msg, int n) {
    char reply[4096];
    if (send(fd, msg, (size_t)n, MSG_NOSIGNAL) != n) return -1;
    int got = 0;
    while (got < n) {
        ssize_t r = recv(fd, reply + got, (size_t)(n - got), 0);
        if (r <= 0) return -1;
        got += (int)r;
    }
    for (int i = 0; i < n; i++)
        if (reply[i] != (char)toupper((unsigned char)msg[i])) return -1;
    return 0;
}

static void fill(char *msg, int n, long seed) {
    for (int i = 0; i < n; i++) msg[i] = (char)('a' + (seed + i) % 26);
}

static void *persistent(void *arg) {
    long id = (long)arg;
    char msg[4096];
    int fd = open_conn();
    if (fd < 0) {
        atomic_fetch_add(&errors, 1);
        return NULL;
    }
    for (int t = 0; t < trips; t++) {
        fill(msg, size, id + t);
        if (round_trip(fd, msg, size) != 0) {
            atomic_fetch_add(&errors, 1);
            break;
        }
    }
    close(fd);
    return NULL;
}

static void *churn(void *arg) {
    long id = (long)arg;
    char msg[16];
    while (atomic_fetch_add(&next_conn, 1) < total) {
        int fd = open_conn();
        fill(msg, 16, id);
        if (fd < 0 || round_trip(fd, msg, 16) != 0) atomic_fetch_add(&errors, 1);
        if (fd >= 0) close(fd);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: echo_load PORT persistent CONNS TRIPS SIZE | PORT churn TOTAL CONCURRENCY\n");
        return 2;
    }
    port = atoi(argv[1]);
    int threads;
    void *(*body)(void *);
    double units;
    if (strcmp(argv[2], "persistent") == 0 && argc >= 6) {
        threads = atoi(argv[3]);
        trips = atoi(argv[4]);
        size = atoi(argv[5]);
        if (size < 1 || size > 4096) return 2;
        body = persistent;
        units = (double)threads * trips;
    } else {
        total = atoi(argv[3]);
        threads = atoi(argv[4]);
        body = churn;
        units = total;
    }
    int idle = (strcmp(argv[2], "churn") == 0 && argc >= 6) ? atoi(argv[5]) : 0;
    int *held = calloc((size_t)(idle > 0 ? idle : 1), sizeof *held);
    for (int i = 0; i < idle; i++) {
        char msg[16];
        fill(msg, 16, i);
        held[i] = open_conn();
        if (held[i] < 0 || round_trip(held[i], msg, 16) != 0) {
            fprintf(stderr, "idle connection %d failed\n", i);
            return 1;
        }
    }
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    double start = now();
    for (long i = 0; i < threads; i++) pthread_create(&ids[i], NULL, body, (void *)i);
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    double secs = now() - start;
    for (int i = 0; i < idle; i++) close(held[i]);
    printf("%.0f %.3f %d\n", units / secs, secs, atomic_load(&errors));
    return atomic_load(&errors) ? 1 : 0;
}
