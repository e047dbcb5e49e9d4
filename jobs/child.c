/* child: fork, the child's set-up, exec, and waiting. */
#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "status.h" // defines: FAIL, FSNN_OK

/* execvp's search path when PATH is not set (glibc's). */
#define CHILD_DEFAULT_PATH "/bin:/usr/bin"
#define CHILD_PATH_MAX 4096

/* ---- in the child, between fork and exec: async-signal-safe calls only ---- */

/* Its own process group, the signals a program expects at its start. */
static void child_own_group(void) {
    setpgid(0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL); /* drops a terminal SIGINT that came before setpgid */
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Moves the descriptors of o onto 0, 1 and 2. Returns -1 on failure. */
static int child_redirect(const child_opts *o) {
    int out = o->out, err = o->err, file = -1;
    if (o->out_path) {
        file = open(o->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (file < 0) return -1;
        out = err = file;
    }
    if ((o->in >= 0 && dup2(o->in, STDIN_FILENO) < 0) ||
        (out >= 0 && dup2(out, STDOUT_FILENO) < 0) || (err >= 0 && dup2(err, STDERR_FILENO) < 0))
        return -1;
    if (file >= 0) close(file);
    return 0;
}

/* execvp(file, argv) with execv: each folder of `path` in turn (an empty
 * entry is the working directory); a folder where the file is missing or
 * may not be run is passed over. Returns only on failure, errno set as
 * execvp sets it. Unlike glibc's execvp, a file the kernel cannot run (a
 * script without "#!") is not handed to /bin/sh: ENOEXEC. */
static void child_exec(const char *file, const char *path, char *const *argv) {
    if (strchr(file, '/')) {
        execv(file, argv);
        return;
    }
    char buf[CHILD_PATH_MAX];
    size_t flen = strlen(file);
    int denied = 0;
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len + 1 + flen < sizeof buf) {
            memcpy(buf, p, len);
            if (len) buf[len++] = '/';
            memcpy(buf + len, file, flen + 1);
            execv(buf, argv);
            if (errno == EACCES)
                denied = 1;
            else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
                     errno != ETIMEDOUT)
                return;
        }
        if (!end) break;
        p = end + 1;
    }
    errno = denied ? EACCES : ENOENT;
}

static _Noreturn void child_run(char *const *argv, const child_opts *o, const char *file,
                                const char *path, int report) {
    if (o->own_group) child_own_group();
    if ((o->dir && chdir(o->dir) != 0) || child_redirect(o) != 0) _exit(126);
    child_exec(file, path, argv);
    int e = errno;
    ssize_t w = write(report, &e, sizeof e);
    (void)w;
    _exit(127);
}

/* ---- in the parent ---- */

int child_start(char *const *argv, const child_opts *o, child *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", o->name ? o->name : argv[0]);
    const char *file = o->exe ? o->exe : argv[0];
    const char *path = getenv("PATH");
    if (!path) path = CHILD_DEFAULT_PATH;
    /* The write end closes at the exec; before, the child writes errno. */
    int report[2];
    if (pipe(report) != 0) return FAIL("cannot start %s: pipe: %s", c->name, strerror(errno));
    fcntl(report[0], F_SETFD, FD_CLOEXEC);
    fcntl(report[1], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) child_run(argv, o, file, path, report[1]);
    int fork_errno = errno;
    close(report[1]);
    if (pid < 0) {
        close(report[0]);
        return FAIL("cannot start %s: fork: %s", c->name, strerror(fork_errno));
    }
    c->pid = pid;
    int e = 0;
    ssize_t got;
    do
        got = read(report[0], &e, sizeof e);
    while (got < 0 && errno == EINTR);
    close(report[0]);
    c->exec_errno = got == (ssize_t)sizeof e ? e : 0;
    return FSNN_OK;
}

int child_wait(const child *c, int *status) {
    while (waitpid(c->pid, status, 0) < 0)
        if (errno != EINTR) return FAIL("waiting for %s: %s", c->name, strerror(errno));
    return FSNN_OK;
}

int child_poll(pid_t *pid, int *status) {
    *pid = waitpid(-1, status, WNOHANG);
    if (*pid >= 0) return FSNN_OK;
    *pid = 0;
    return errno == EINTR ? FSNN_OK : FAIL("waitpid: %s", strerror(errno));
}

int child_exit_code(int status) {
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
