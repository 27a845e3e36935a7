/* The open-loop generator of open_loop.py in C: the same schedule, connections and latencies,
 * without an interpreter competing with the server for the machine's cores.
 *
 *   open_loop HOST PORT RATE CONNECTIONS REQUEST_TAIL PATHS_FILE CHOICES_FILE
 *
 * PATHS_FILE holds the paths, one a line; CHOICES_FILE one uint32 path index per scheduled
 * request (n of them: request i is due at i / RATE s after the start). Connection c sends
 * requests c, c + CONNECTIONS, ... one at a time, each "GET <path>" + REQUEST_TAIL, never before
 * it is due (the first 0.2 s after the connections are open, LEAD_S in open_loop.py), and times
 * each from when it was *due*, not sent: a stalled server is charged for every request it
 * delayed. Writes to stdout (native byte order): duration_s and its own CPU seconds (2 doubles),
 * then the n latencies in ms (doubles) and the n HTTP statuses (int32).
 * After an answer saying "Connection: close" the connection's next request opens a new one.
 * A connection that fails or an answer it cannot read (no Content-Length) ends the run, exit 1.
 */
#define _GNU_SOURCE
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { HEAD_MAX = 65536 };

typedef struct {
    int fd;
    long next;           /* the next request this connection owns */
    int busy;            /* it is out, its answer not yet whole */
    size_t got;          /* bytes of the answer read */
    long need;           /* head + body bytes, -1 until the head is read */
    int status;
    int closing;         /* its answer said "Connection: close" */
    char buf[HEAD_MAX];  /* the head; past it the body is read here and only counted */
} conn_t;

static void fail(const char *what, const char *why) {
    fprintf(stderr, "open_loop: %s: %s\n", what, why);
    exit(1);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *read_file(const char *name, size_t *size) {
    FILE *f = fopen(name, "rb");
    if (!f) fail(name, "cannot open");
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    char *data = malloc(*size + 1);
    if (!data || fread(data, 1, *size, f) != *size) fail(name, "cannot read");
    data[*size] = '\0';
    fclose(f);
    return data;
}

static int connect_to(const char *host, const char *port) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *found;
    int err = getaddrinfo(host, port, &hints, &found);
    if (err) fail(host, gai_strerror(err));
    int fd = socket(found->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, found->ai_addr, found->ai_addrlen) < 0) fail(host, "cannot connect");
    int one = 1; /* as asyncio's transports: a request leaves when written */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    freeaddrinfo(found);
    return fd;
}

/* The Content-Length of the head's lines (each ending "\r\n"), -1 when it has none. */
static long content_length(const char *head, const char *end) {
    for (const char *line = head; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) break;
        if (eol - line > 15 && strncasecmp(line, "content-length:", 15) == 0)
            return strtol(line + 15, NULL, 10);
        line = eol + 1;
    }
    return -1;
}

/* Whether the head's lines say "Connection: close": the server ends the connection after this
 * answer, and the next request goes on a new one, as any HTTP/1.1 client does. */
static int closes(const char *head, const char *end) {
    for (const char *line = head; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        if (!eol) break;
        if (eol - line > 11 && strncasecmp(line, "connection:", 11) == 0)
            for (const char *v = line + 11; v + 5 <= eol; v++)
                if (strncasecmp(v, "close", 5) == 0) return 1;
        line = eol + 1;
    }
    return 0;
}

/* Read what arrived on c; 1 when its answer is whole. */
static int on_readable(conn_t *c) {
    char *into = c->need < 0 ? c->buf + c->got : c->buf;
    size_t room = c->need < 0 ? HEAD_MAX - c->got : HEAD_MAX;
    if (room == 0) fail("answer", "head over 64 KiB");
    ssize_t n = read(c->fd, into, room);
    if (n <= 0) fail("answer", n == 0 ? "the server closed the connection" : "read failed");
    c->got += (size_t)n;
    if (c->need < 0) {
        char *end = memmem(c->buf, c->got, "\r\n\r\n", 4);
        if (!end) return 0;
        long length = content_length(c->buf, end + 2);
        if (length < 0) fail("answer", "no Content-Length");
        c->status = atoi(strchr(c->buf, ' ') + 1);
        c->closing = closes(c->buf, end + 2);
        c->need = (end + 4 - c->buf) + length;
    }
    if ((long)c->got > c->need) fail("answer", "bytes past its end (one request at a time)");
    return (long)c->got == c->need;
}

int main(int argc, char **argv) {
    if (argc != 8) fail("usage", "HOST PORT RATE CONNECTIONS REQUEST_TAIL PATHS CHOICES");
    double rate = atof(argv[3]);
    int connections = atoi(argv[4]);
    const char *tail = argv[5];
    size_t size, choices_size;
    char *text = read_file(argv[6], &size);
    uint32_t *choices = read_file(argv[7], &choices_size);
    long n = (long)(choices_size / sizeof *choices);
    size_t n_paths = 0, longest = 0;
    for (size_t i = 0; i < size; i++) n_paths += text[i] == '\n';
    char **paths = malloc((n_paths + 1) * sizeof *paths);
    n_paths = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        paths[n_paths++] = line;
        if (strlen(line) > longest) longest = strlen(line);
    }
    char *request = malloc(4 + longest + strlen(tail) + 1);
    double *latency_ms = malloc(n * sizeof *latency_ms);
    int32_t *status = malloc(n * sizeof *status);
    conn_t *conns = calloc(connections, sizeof *conns);
    struct pollfd *polled = malloc(connections * sizeof *polled);
    conn_t **owner = malloc(connections * sizeof *owner);
    for (int c = 0; c < connections; c++) {
        conns[c].fd = connect_to(argv[1], argv[2]);
        conns[c].next = c;
    }
    double start = now_s() + 0.2;
    for (;;) {
        double t = now_s(), wake = INFINITY;
        int waiting = 0;
        for (int c = 0; c < connections; c++) {
            conn_t *k = &conns[c];
            if (!k->busy && k->next < n) {
                double due = start + k->next / rate;
                if (due > t) {
                    wake = fmin(wake, due);
                    continue;
                }
                if (k->fd < 0) /* a blocking connect, on the clock: the others wait for it */
                    k->fd = connect_to(argv[1], argv[2]);
                uint32_t pick = choices[k->next];
                if (pick >= n_paths) fail("choices", "a path index past the paths");
                int len = sprintf(request, "GET %s%s", paths[pick], tail);
                if (write(k->fd, request, (size_t)len) != len) fail("request", "write failed");
                k->busy = 1, k->got = 0, k->need = -1;
            }
            if (k->busy) {
                polled[waiting] = (struct pollfd){.fd = k->fd, .events = POLLIN};
                owner[waiting++] = k;
            }
        }
        if (!waiting && wake == INFINITY) break;
        struct timespec timeout, *until = NULL;
        if (wake != INFINITY) {
            double left = fmax(wake - now_s(), 0.0);
            timeout = (struct timespec){(time_t)left, (long)((left - (time_t)left) * 1e9)};
            until = &timeout;
        }
        if (ppoll(polled, (nfds_t)waiting, until, NULL) < 0) fail("ppoll", "failed");
        for (int i = 0; i < waiting; i++) {
            conn_t *k = owner[i];
            if (polled[i].revents && on_readable(k)) {
                latency_ms[k->next] = (now_s() - (start + k->next / rate)) * 1000.0;
                status[k->next] = k->status;
                k->next += connections;
                k->busy = 0;
                if (k->closing) { /* its next request, if any, opens a new connection */
                    close(k->fd);
                    k->fd = -1;
                }
            }
        }
    }
    struct rusage used;
    getrusage(RUSAGE_SELF, &used);
    double head[2] = {
        now_s() - start,
        used.ru_utime.tv_sec + used.ru_stime.tv_sec
            + (used.ru_utime.tv_usec + used.ru_stime.tv_usec) * 1e-6,
    };
    fwrite(head, sizeof head, 1, stdout);
    fwrite(latency_ms, sizeof *latency_ms, (size_t)n, stdout);
    fwrite(status, sizeof *status, (size_t)n, stdout);
    return fflush(stdout) != 0;
}
