/* child: programs started through PATH and by path, exit codes and
 * signals, a program that cannot be executed (exec_errno, exit 127), a
 * failed chdir (exit 126), stdout into a pipe and into a file in another
 * working directory, execvp's PATH rules (a file without execute
 * permission passed over; only such files: EACCES), a child in its own
 * process group with no signal blocked, child_poll and child_wait's
 * errors. The programs are /bin/sh and small scripts written to a fresh
 * folder under /tmp. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "child.h"
#include "status.h"

static char tmp_dir[] = "/tmp/fsnn_test_child_XXXXXX";

/* Starts argv with opts o (NULL: everything inherited) and waits: the exit
 * code as a shell reports it, -1 when start or wait failed. */
static int run(char *const *argv, const child_opts *o, child *c) {
    child_opts dflt = {.in = -1, .out = -1, .err = -1};
    int status = 0;
    if (child_start(argv, o ? o : &dflt, c) != 0 || child_wait(c, &status) != 0) {
        fprintf(stderr, "run %s: %s\n", argv[0], status_message());
        status_clear();
        return -1;
    }
    return child_exit_code(status);
}

/* Runs `sh -c script` with stdout into a pipe; out gets what it printed. */
static int run_capture(const char *script, const child_opts *base, char *out, size_t size) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    child_opts o = *base;
    o.out = fds[1];
    char *const argv[] = {"sh", "-c", (char *)script, NULL};
    child c;
    int rc = child_start(argv, &o, &c);
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while (rc == 0 && len + 1 < size && (got = read(fds[0], out + len, size - 1 - len)) > 0)
        len += (size_t)got;
    out[len] = '\0';
    close(fds[0]);
    int status = 0;
    if (rc != 0 || child_wait(&c, &status) != 0) {
        status_clear();
        return -1;
    }
    return child_exit_code(status);
}

static void write_file(const char *path, const char *text, mode_t mode) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, mode);
}

static void test_exit_codes(void) {
    child c;
    char *const t[] = {"true", NULL};
    EXPECT(run(t, NULL, &c) == 0 && c.exec_errno == 0, "true from PATH");
    EXPECT(!strcmp(c.name, "true"), "name '%s'", c.name);
    char *const seven[] = {"sh", "-c", "exit 7", NULL};
    EXPECT(run(seven, NULL, &c) == 7, "exit 7");
    char *const term[] = {"sh", "-c", "kill -TERM $$", NULL};
    EXPECT(run(term, NULL, &c) == 128 + SIGTERM, "ended by SIGTERM: 128 + 15");
    child_opts by_path = {.exe = "/bin/sh", .in = -1, .out = -1, .err = -1};
    char *const named[] = {"any name", "-c", "exit 3", NULL};
    EXPECT(run(named, &by_path, &c) == 3 && !strcmp(c.name, "any name"), "exe /bin/sh");
}

static void test_exec_failures(void) {
    child c;
    char *const missing[] = {"fsnn-test-no-such-program", NULL};
    EXPECT(run(missing, NULL, &c) == 127 && c.exec_errno == ENOENT,
           "not in PATH: exit 127, ENOENT (errno %d)", c.exec_errno);
    child_opts by_abs = {.exe = "/nonexistent/fsnn-test", .in = -1, .out = -1, .err = -1};
    EXPECT(run(missing, &by_abs, &c) == 127 && c.exec_errno == ENOENT, "missing path: ENOENT");
    child_opts nodir = {.dir = "/nonexistent/folder", .in = -1, .out = -1, .err = -1};
    char *const t[] = {"true", NULL};
    EXPECT(run(t, &nodir, &c) == 126 && c.exec_errno == 0, "chdir failure: exit 126");
}

/* execvp's rules: a folder whose file may not be executed is passed over;
 * when no folder has a runnable one, EACCES. */
static void test_path_rules(void) {
    char a[256], b[256], prog[300];
    snprintf(a, sizeof a, "%s/a", tmp_dir);
    snprintf(b, sizeof b, "%s/b", tmp_dir);
    mkdir(a, 0755);
    mkdir(b, 0755);
    snprintf(prog, sizeof prog, "%s/fsnn-test-prog", a);
    write_file(prog, "#!/bin/sh\necho a\n", 0644);
    snprintf(prog, sizeof prog, "%s/fsnn-test-prog", b);
    write_file(prog, "#!/bin/sh\necho b\n", 0755);
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    char path[600];
    snprintf(path, sizeof path, "%s:%s:/bin:/usr/bin", a, b);
    setenv("PATH", path, 1);
    child_opts o = {.in = -1, .out = -1, .err = -1};
    char out[64];
    int fds[2];
    EXPECT(pipe(fds) == 0, "pipe");
    o.out = fds[1];
    char *const argv[] = {"fsnn-test-prog", NULL};
    child c;
    int status = 0;
    EXPECT_OK(child_start(argv, &o, &c));
    close(fds[1]);
    ssize_t got = read(fds[0], out, sizeof out - 1);
    out[got > 0 ? got : 0] = '\0';
    close(fds[0]);
    EXPECT_OK(child_wait(&c, &status));
    EXPECT(!strcmp(out, "b\n") && child_exit_code(status) == 0, "ran '%s'", out);
    snprintf(path, sizeof path, "%s", a);
    setenv("PATH", path, 1);
    o.out = -1;
    EXPECT(run(argv, &o, &c) == 127 && c.exec_errno == EACCES, "only a non-executable: EACCES");
    if (saved) setenv("PATH", saved, 1);
    free(saved);
    snprintf(prog, sizeof prog, "%s/fsnn-test-prog", a);
    unlink(prog);
    snprintf(prog, sizeof prog, "%s/fsnn-test-prog", b);
    unlink(prog);
    rmdir(a);
    rmdir(b);
}

/* stdout into a pipe; stdout and stderr into a file taken in dir. */
static void test_redirection(void) {
    child_opts o = {.in = -1, .out = -1, .err = -1};
    char out[256];
    EXPECT(run_capture("echo hello", &o, out, sizeof out) == 0 && !strcmp(out, "hello\n"),
           "pipe: '%s'", out);
    child_opts f = {.dir = tmp_dir, .out_path = "log", .in = -1, .out = -1, .err = -1};
    char *const argv[] = {"sh", "-c", "pwd; echo err >&2", NULL};
    child c;
    EXPECT(run(argv, &f, &c) == 0, "out_path");
    char path[256], text[512] = "", want[512];
    snprintf(path, sizeof path, "%s/log", tmp_dir);
    FILE *in = fopen(path, "r");
    size_t n = in ? fread(text, 1, sizeof text - 1, in) : 0;
    text[n] = '\0';
    if (in) fclose(in);
    snprintf(want, sizeof want, "%s\nerr\n", tmp_dir);
    EXPECT(!strcmp(text, want), "log '%s', want '%s'", text, want);
    char *const quiet[] = {"true", NULL};
    EXPECT(run(quiet, &f, &c) == 0, "out_path again");
    struct stat st;
    EXPECT(stat(path, &st) == 0 && st.st_size == 0, "the log is truncated");
    unlink(path);
}

/* own_group: its own process group and no signal blocked, whatever ours. */
static void test_own_group(void) {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    static const char script[] = "set -- $(cut -d' ' -f5 /proc/$$/stat) "
                                 "$(sed -n 's/^SigBlk:[[:space:]]*//p' /proc/$$/status); "
                                 "echo $1 $2";
    child_opts own = {.in = -1, .out = -1, .err = -1, .own_group = 1};
    char out[128], want[128];
    int code = run_capture(script, &own, out, sizeof out);
    /* run_capture's child is the one started last: its pid is the group. */
    EXPECT(code == 0, "own group: exit %d", code);
    long pgid = 0;
    char mask[64] = "";
    EXPECT(sscanf(out, "%ld %63s", &pgid, mask) == 2 && pgid != (long)getpgrp() &&
               !strcmp(mask, "0000000000000000"),
           "own group: '%s'", out);
    child_opts same = {.in = -1, .out = -1, .err = -1};
    code = run_capture(script, &same, out, sizeof out);
    snprintf(want, sizeof want, "%ld ", (long)getpgrp());
    EXPECT(code == 0 && !strncmp(out, want, strlen(want)) &&
               strstr(out, "0000000000000000\n") == NULL,
           "inherited group and mask: '%s'", out);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

static void test_poll_and_wait(void) {
    pid_t pid = -1;
    int status = 0;
    EXPECT_FAILS(child_poll(&pid, &status), "waitpid");
    EXPECT(pid == 0, "no child: pid %ld", (long)pid);
    child_opts o = {.in = -1, .out = -1, .err = -1};
    char *const argv[] = {"sh", "-c", "exit 5", NULL};
    child c;
    EXPECT_OK(child_start(argv, &o, &c));
    pid = 0;
    for (int k = 0; k < 5000 && pid == 0; k++) {
        EXPECT_OK(child_poll(&pid, &status));
        if (pid == 0) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    EXPECT(pid == c.pid && child_exit_code(status) == 5, "polled pid %ld, exit %d", (long)pid,
           child_exit_code(status));
    EXPECT_FAILS(child_wait(&c, &status), "waiting for sh");
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_exit_codes();
    test_exec_failures();
    test_path_rules();
    test_redirection();
    test_own_group();
    test_poll_and_wait();
    rmdir(tmp_dir);
    return check_finish("test_child");
}
