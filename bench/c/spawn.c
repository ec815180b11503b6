/* Start+join cost of a no-op child: fork, _exit(0) in the child, waitpid in the parent.
 * usage: spawn seq|conc N REPS [LIVE]  -> prints the best microseconds per child
 * LIVE children are forked first and stay blocked (pause) while the loop runs, so that the
 * figure shows what other live children cost each start+join (bench/spawn.sh). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static pid_t start(void) {
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(1); }
    if (pid == 0) _exit(0);
    return pid;
}

static void join(pid_t pid) {
    int status;
    if (waitpid(pid, &status, 0) != pid) { perror("waitpid"); exit(1); }
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s seq|conc N REPS [LIVE]\n", argv[0]); return 2; }
    int conc = strcmp(argv[1], "conc") == 0;
    int n = atoi(argv[2]), reps = atoi(argv[3]);
    int live = argc > 4 ? atoi(argv[4]) : 0;
    pid_t *idle = calloc(live > 0 ? live : 1, sizeof *idle);
    for (int i = 0; i < live; i++) {
        idle[i] = fork();
        if (idle[i] < 0) { perror("fork"); return 1; }
        if (idle[i] == 0) { pause(); _exit(0); }
    }
    pid_t *pids = calloc(n, sizeof *pids);
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t = now();
        if (conc) {
            for (int i = 0; i < n; i++) pids[i] = start();
            for (int i = 0; i < n; i++) join(pids[i]);
        } else {
            for (int i = 0; i < n; i++) join(start());
        }
        double e = now() - t;
        if (e < best) best = e;
    }
    for (int i = 0; i < live; i++) kill(idle[i], SIGKILL);
    for (int i = 0; i < live; i++) join(idle[i]);
    printf("%.2f\n", best * 1e6 / n);
    return 0;
}
