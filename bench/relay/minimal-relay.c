/* minimal-relay: the baseline the media relays are measured against.
 *
 * The least a userspace RTP relay can do: PAIRS port pairs on IP, starting at
 * BASE (side A on BASE+4i, side B on BASE+4i+2); one thread, epoll, one
 * recvfrom and one sendto per packet; each side latches onto the address its
 * packets come from and the packet goes out of the other side's socket to the
 * address latched there. No RTCP, no statistics, no timers.
 *
 *   minimal-relay IP BASE PAIRS
 *
 * Prints "ready" once every socket is bound; runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

struct side {
    int fd;
    struct sockaddr_in peer;
    int latched;
};

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: minimal-relay IP BASE PAIRS\n");
        return 2;
    }
    int base = atoi(argv[2]), pairs = atoi(argv[3]);
    struct side *sides = calloc((size_t)pairs * 2, sizeof *sides);
    int ep = epoll_create1(0);
    if (!sides || ep < 0) {
        perror("setup");
        return 1;
    }
    for (int i = 0; i < pairs * 2; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(base + 2 * i)};
        inet_pton(AF_INET, argv[1], &a.sin_addr);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
            fprintf(stderr, "bind %s:%d: %s\n", argv[1], base + 2 * i, strerror(errno));
            return 1;
        }
        sides[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    printf("ready\n");
    fflush(stdout);
    struct epoll_event events[256];
    char buf[2048];
    for (;;) {
        int n = epoll_wait(ep, events, 256, -1);
        for (int e = 0; e < n; e++) {
            int i = (int)events[e].data.u32;
            struct side *from = &sides[i], *to = &sides[i ^ 1];
            for (;;) {
                struct sockaddr_in src;
                socklen_t len = sizeof src;
                ssize_t got = recvfrom(from->fd, buf, sizeof buf, 0, (struct sockaddr *)&src, &len);
                if (got < 0)
                    break;
                from->peer = src;
                from->latched = 1;
                if (to->latched)
                    sendto(to->fd, buf, (size_t)got, 0, (struct sockaddr *)&to->peer, sizeof to->peer);
            }
        }
    }
}
