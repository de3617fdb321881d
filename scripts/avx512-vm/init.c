/*
 * PID 1 of the AVX-512 check VM (scripts/ci-avx512.sh): reports the CPU
 * features Linux enabled, runs every program in /tests in name order (the
 * kernels crate's test binaries; the initramfs also holds the host's dynamic
 * loader and the libraries they link) with the arguments listed one
 * per line in /args/<name> if that file exists, prints one status line per
 * program and a summary, then powers the machine off, which ends Bochs.
 *
 * The host script reads the serial console for the "init: " lines.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static int has_flag(const char *flags, const char *name) {
    size_t n = strlen(name);
    for (const char *p = flags; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == flags || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == '\0')) return 1;
    }
    return 0;
}

static void finish(void) {
    fflush(stdout);
    tcdrain(1); /* the console is asynchronous: let the last lines out */
    sleep(2);
    sync();
    reboot(RB_POWER_OFF);
    for (;;) pause();
}

int main(int argc, char **argv, char **envp) {
    (void)argc;
    (void)argv;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (mount("proc", "/proc", "proc", 0, NULL) != 0) perror("init: mount /proc");
    /* /dev/urandom and friends: proptest seeds its RNG from the OS. */
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) != 0) perror("init: mount /dev");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) == 0) {
            printf("init: cpu flags: avx2 %d fma %d avx512f %d\n", has_flag(line, "avx2"), has_flag(line, "fma"),
                   has_flag(line, "avx512f"));
            break;
        }
    }
    if (f) fclose(f);

    struct dirent **names;
    int n = scandir("/tests", &names, NULL, alphasort);
    if (n < 0) {
        perror("init: scandir /tests");
        finish();
    }
    int ran = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] == '.') continue;
        char path[512];
        snprintf(path, sizeof path, "/tests/%s", names[i]->d_name);
        char *child_argv[64] = {path};
        int nargs = 1;
        char args_path[512];
        snprintf(args_path, sizeof args_path, "/args/%s", names[i]->d_name);
        FILE *a = fopen(args_path, "r");
        while (a && nargs < 63 && fgets(line, sizeof line, a)) {
            line[strcspn(line, "\n")] = '\0';
            if (line[0] != '\0') child_argv[nargs++] = strdup(line);
        }
        if (a) fclose(a);
        child_argv[nargs] = NULL;
        printf("init: running %s", path);
        for (int k = 1; k < nargs; k++) printf(" %s", child_argv[k]);
        printf("\n");
        pid_t pid = fork();
        if (pid == 0) {
            execve(path, child_argv, envp);
            perror("init: execve");
            _exit(127);
        }
        int status = -1;
        if (pid < 0 || waitpid(pid, &status, 0) < 0) status = -1;
        int ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (status != -1 && WIFSIGNALED(status))
            printf("init: %s killed by signal %d\n", path, WTERMSIG(status));
        else
            printf("init: %s exit status %d\n", path, status == -1 ? -1 : WEXITSTATUS(status));
        ran++;
        failed += !ok;
    }
    printf("init: done: %d programs, %d failed\n", ran, failed);
    finish();
    return 0;
}
