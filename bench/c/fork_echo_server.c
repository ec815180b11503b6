/* The C baseline for bench/echo.sh: scenario 8's forking echo server, done the classic way.
 * One fork per connection; the parent closes its copy of the connection and reaps finished
 * children with waitpid(-1, WNOHANG) in a SIGCHLD handler (SA_RESTART, so accept resumes).
 *
 *   fork_echo_server [PORT [HOST]]    prints "listening on HOST:PORT" once it listens
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_sigchld(int sig) {
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static void serve(int conn) {
    char buf[1024];
    for (;;) {
        ssize_t n = recv(conn, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* end of stream, or a reset */
        for (ssize_t i = 0; i < n; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
        ssize_t off = 0;
        while (off < n) {
            ssize_t m = send(conn, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (m < 0 && errno == EINTR) continue;
            if (m < 0) return;
            off += m;
        }
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 6087;
    const char *host = argc > 2 ? argv[2] : "127.0.0.1";

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int server = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 || bind(server, (struct sockaddr *)&addr, sizeof addr) < 0 ||
        listen(server, 128) < 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(server, (struct sockaddr *)&addr, &len);
    printf("listening on %s:%d\n", host, ntohs(addr.sin_port));
    fflush(stdout);

    for (;;) {
        int conn = accept4(server, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            perror("accept");
            return 1;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(server);
            serve(conn);
            _exit(0);
        }
        close(conn);
    }
}
