/* Starts N idle fork() children (pause), prints their pids, waits for a line on stdin. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 20;
    pid_t pids[4096];
    for (int i = 0; i < n && i < 4096; i++) {
        pid_t pid = fork();
        if (pid == 0) { pause(); _exit(0); }
        pids[i] = pid;
    }
    for (int i = 0; i < n; i++) printf("%d\n", pids[i]);
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) { /* end of input */ }
    for (int i = 0; i < n; i++) kill(pids[i], SIGKILL);
    while (wait(NULL) > 0) {}
    return 0;
}
