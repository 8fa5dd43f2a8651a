#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* One line per call: its name and the errno it failed with (0: it ran). */
static void show(const char *what, long r) { printf("%s %d\n", what, r < 0 ? errno : 0); }

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "int80")) {
        long r;
        /* getpid through the 32-bit entry point. */
        __asm__ volatile("int $0x80" : "=a"(r) : "a"(20L) : "memory");
        printf("int80 ran %ld\n", r);
        return 0;
    }
    char c = 'x';
    show("unshare-user", unshare(CLONE_NEWUSER));
    show("clone3", syscall(SYS_clone3, NULL, 0));
    show("keyctl", syscall(SYS_keyctl, 0, -3, 0));
    show("tiocsti", ioctl(0, TIOCSTI, &c));
    show("personality-query", personality(0xffffffff));
    show("personality-read-implies-exec", personality(0x0400000));
    show("vsock", socket(40, SOCK_STREAM, 0));
    show("nr400", syscall(400));
    /* getpid of the x32 ABI. */
    show("x32", syscall(0x40000000 | 39));
    char params[120] = {0}; /* struct io_uring_params */
    show("io_uring_setup", syscall(SYS_io_uring_setup, 4, params));
    show("chroot", chroot("/"));
    pid_t p = fork();
    if (p == 0)
        _exit(7);
    int st = 0;
    waitpid(p, &st, 0);
    printf("fork %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}
