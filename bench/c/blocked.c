/* N fork() children blocked in read() on one pipe for HOLD seconds; then the parent writes
 * one byte per child and reaps them (see bench/blocked.sh).
 * usage: blocked N HOLD */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 300;
    double hold = argc > 2 ? atof(argv[2]) : 4.0;
    int fds[2];
    if (pipe(fds) < 0) { perror("pipe"); return 1; }
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 1; }
        if (pid == 0) {
            char c;
            close(fds[1]);
            _exit(read(fds[0], &c, 1) == 1 ? 0 : 1);
        }
    }
    struct timespec ts = {(time_t)hold, (long)((hold - (time_t)hold) * 1e9)};
    nanosleep(&ts, NULL);
    for (int i = 0; i < n; i++) {
        if (write(fds[1], "x", 1) != 1) { perror("write"); return 1; }
    }
    while (wait(NULL) > 0) {
    }
    return 0;
}
