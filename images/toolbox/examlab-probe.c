/*
 * examlab-probe: the grader's own eyes inside a lab machine.
 *
 * The candidate is root on the machine being graded and may have replaced
 * systemctl, ss, ps or the resolver tools with liars. This program is
 * statically linked, reaches the machine from a read-only volume (or fresh
 * over SSH) and asks the kernel directly (never systemd, whose socket a
 * candidate can answer for), so what it
 * reports does not depend on any binary or library the candidate controls.
 *
 *   examlab-probe serve                   the grader's work list on stdin, one record per request on stdout
 *   examlab-probe relay PORT              stdin and stdout joined to 127.0.0.1:PORT in the machine
 *
 * relay carries an SSH connection to a machine whose engine is on another
 * host (the daemon cannot route to its lab networks): the engine's exec API
 * is the pipe, the machine's own sshd is the other end. It adds no trust:
 * the session is SSH, end to end.
 *
 * serve (protocol 1) first makes itself non-dumpable, so that a root of the
 * machine without CAP_SYS_PTRACE can neither trace it nor reach its fds.
 * stdin holds a header line `examlab-probe 1 DEADLINE_MS`
 * then requests `ID<TAB>VERB<TAB>ARG...`, each line ending with LF (ids
 * 1..999999999, unique; at most 16 args of any bytes but TAB, LF and NUL; a
 * line at most 64 KiB, the input at most 1 MiB). The whole input is read and
 * checked before any work; a malformed one gets a single record with id 0,
 * status err, and exit 2. Otherwise each request gets exactly one record,
 * in the order answers come: the network verbs (connect, ping, dns,
 * resolve, http) are answered side by side, the others in input order,
 *
 *   ID<TAB>STATUS<TAB>LENGTH<LF> PAYLOAD(LENGTH bytes) <LF>
 *
 * STATUS: ok (answered), part (answered, output cut at a limit), neg (a
 * negative answer, the payload says why), err (could not decide, the payload
 * says why). `end<TAB>COUNT<LF>` closes the output, exit 0. The run ends
 * DEADLINE_MS after the probe started: every wait is bounded by its own MS
 * and by that deadline; an operation the deadline (rather than its own MS)
 * cut short, and every request not yet answered, is err `deadline`. Should a system
 * call hang regardless (a stuck FUSE or NFS mount), a watchdog thread writes
 * the remaining records as err `deadline` just after the deadline and exits.
 *
 *   lstat PATH                 type, mode, owner, size (and symlink target)
 *   read PATH MAXBYTES         the first bytes of a regular file
 *   list DIR                   entries, sorted: type, name, symlink target
 *   statfs PATH                file system block and inode counts
 *   xattr PATH NAME            one extended attribute of PATH, raw (an access ACL)
 *   procs                      every process: pid, ppid, uid, comm, exe, cgroup, cmdline
 *   cgroup RELPATH             the processes of one cgroup
 *   connect ADDR PORT MS       TCP connect to a numeric address
 *   ping ADDR MS               one ICMP echo to a numeric IPv4 address
 *   dns TYPE NAME MS [SERVER]  one DNS query (servers from /etc/resolv.conf if none given)
 *   resolve NAME MS            a name's IPv4 address: literal, /etc/hosts, then DNS
 *   http HOST PORT HOSTHEADER PATH MS MAXBODY   an HTTP/1.0 GET: the raw response
 *   run MS SHELL COMMAND [USER]  SHELL -c COMMAND (through /bin/su for USER): exit, output
 *
 * Payloads of KEY=VALUE lines never hold a TAB or LF inside a value (they
 * become spaces).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---------- addresses ---------- */

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}


/* ---------- answers built in memory, time bounds, careful file reads ---------- */

enum status { ST_OK, ST_PART, ST_NEG, ST_ERR, ST_DEADLINE };
static const char *const STATUS_NAMES[] = {"ok", "part", "neg", "err", "err"};

/* A growable buffer that never holds more than `limit` bytes. */
struct sbuf {
    char *p;
    size_t len, cap, limit;
    int cut; /* something did not fit under the limit */
    int oom;
};

static void sb_init(struct sbuf *b, size_t limit) {
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

static void sb_clear(struct sbuf *b) {
    b->len = 0;
    b->cut = 0;
}

/* Appends what fits of data; returns 0 when all of it did. */
static int sb_add(struct sbuf *b, const void *data, size_t n) {
    size_t room = b->len < b->limit ? b->limit - b->len : 0, take = n < room ? n : room;
    if (b->len + take > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + take) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return -1;
        }
        b->p = p;
        b->cap = cap;
    }
    if (take) memcpy(b->p + b->len, data, take);
    b->len += take;
    if (take < n) b->cut = 1;
    return take < n ? -1 : 0;
}

static int sb_vprintf(struct sbuf *b, const char *fmt, va_list ap) {
    char small[512];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    int rc = -1;
    if (n >= 0 && (size_t)n < sizeof small) {
        rc = sb_add(b, small, (size_t)n);
    } else if (n >= 0) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            rc = sb_add(b, big, (size_t)n);
            free(big);
        } else {
            b->oom = 1;
        }
    }
    va_end(again);
    return rc;
}

__attribute__((format(printf, 2, 3))) static int sb_printf(struct sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = sb_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Replaces the payload with a message and returns the status: `return reply(out, ST_NEG, "missing");` */
__attribute__((format(printf, 3, 4))) static int reply(struct sbuf *b, int status, const char *fmt, ...) {
    sb_clear(b);
    b->limit = 65536; /* whatever limit the verb had set for its data */
    va_list ap;
    va_start(ap, fmt);
    sb_vprintf(b, fmt, ap);
    va_end(ap);
    return status;
}

/* Values in KEY=VALUE and TAB-separated lines never hold a TAB or LF. */
static void flatten(char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\t' || s[i] == '\n') s[i] = ' ';
}

/* Appends a whole line or nothing (then marks the buffer cut): listings end on a line boundary. */
static int sb_add_line(struct sbuf *b, const struct sbuf *line) {
    if (line->oom) b->oom = 1;
    if (b->len + line->len > b->limit) {
        b->cut = 1;
        return -1;
    }
    return sb_add(b, line->p, line->len);
}

/* The end of the serve run (CLOCK_MONOTONIC ms); the one-shot subcommands have none. */
static long g_deadline = LONG_MAX;

/* When a wait must end, and whether the run's deadline (not the request's own MS) set it. */
struct bound {
    long end, ms;
    int by_deadline;
};

/* The tighter of `ms` from now and `outer`. */
static struct bound clip(struct bound outer, long ms) {
    long now = now_ms();
    struct bound b = {now + ms, ms, 0};
    if (outer.end < b.end) {
        b = outer;
        b.ms = outer.end - now;
    }
    return b;
}

static struct bound bound_ms(long ms) {
    struct bound run = {g_deadline, 0, 1};
    return clip(run, ms);
}

/* Waits until fd is ready or `end`; returns its revents, 0 on timeout, -1 on error. */
static int wait_fd(int fd, short events, long end) {
    for (;;) {
        long left = end - now_ms();
        if (left <= 0) return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r;
        return p.revents;
    }
}

/* Strict decimal (digits only) no larger than max. */
static int parse_num(const char *s, unsigned long max, unsigned long *v) {
    unsigned long n = 0;
    size_t len = strlen(s);
    if (len == 0 || len > 10) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        n = n * 10 + (unsigned long)(*s - '0');
    }
    if (n > max) return -1;
    *v = n;
    return 0;
}

static const char *type_name(mode_t m) {
    switch (m & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symlink";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFBLK: return "block";
    case S_IFCHR: return "character";
    }
    return "unknown";
}

static int missing_or_err(struct sbuf *out, int err) {
    if (err == ENOENT || err == ENOTDIR) return reply(out, ST_NEG, "missing");
    return reply(out, ST_ERR, "%s", strerror(err));
}

/*
 * Reads at most `max` bytes of a regular file (following symlinks) into `out`,
 * until EOF: procfs and sysfs files say size 0. What the candidate may plant
 * instead (a FIFO, a socket, a device) is never read: it is refused by stat
 * before the open, so no device sees an open, and by fstat after it, should
 * the path have been swapped in between; O_NONBLOCK keeps that open from
 * waiting on a FIFO's writer. Returns 0 (with *more set when bytes
 * remained), -1 with errno, or 1 when the file is not regular (*type names it).
 */
static int read_regular(const char *path, size_t max, struct sbuf *out, int *more, const char **type) {
    struct stat st;
    *more = 0;
    if (stat(path, &st) < 0) return -1;
    if (!S_ISREG(st.st_mode)) {
        *type = type_name(st.st_mode);
        return 1;
    }
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return -1;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        *type = type_name(st.st_mode);
        return 1;
    }
    size_t got = 0;
    char chunk[16384];
    for (;;) {
        size_t want = max - got + 1; /* one more than wanted tells whether bytes remained */
        ssize_t r = read(fd, chunk, want < sizeof chunk ? want : sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) break;
        size_t keep = (size_t)r < max - got ? (size_t)r : max - got;
        if (sb_add(out, chunk, keep) < 0 && out->oom) {
            close(fd);
            errno = ENOMEM;
            return -1;
        }
        got += keep;
        if ((size_t)r > keep) {
            *more = 1;
            break;
        }
    }
    close(fd);
    return 0;
}

/* Reads at most max bytes of a file as read_regular does, NUL-terminated; -1 when it is not a readable regular file. */
static int read_text(const char *path, size_t max, struct sbuf *out) {
    const char *type;
    int more;
    sb_clear(out);
    out->limit = max + 1;
    int rc = read_regular(path, max, out, &more, &type);
    if (rc == 1) errno = EINVAL;
    if (rc != 0) return -1;
    return sb_add(out, "", 1);
}

static uint16_t random16(void) {
    uint16_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != sizeof v) v = (uint16_t)(now_ms() ^ getpid());
    return v;
}

/* ---------- DNS ---------- */

struct qtype {
    const char *name;
    int code;
};
static const struct qtype QTYPES[] = {{"A", 1}, {"NS", 2}, {"CNAME", 5}, {"PTR", 12}, {"MX", 15}, {"TXT", 16}, {"AAAA", 28}, {"SRV", 33}, {0, 0}};
static const char *RCODES[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};

/* What one query found out, besides the lines it wrote. */
struct dns_result {
    int rcode;
    int has_a;
    struct in_addr a; /* the first A record of the answer */
    char why[256];    /* the reason of a negative answer or an error */
};

/* Expands a possibly compressed name at *off into out; returns 0 or -1. */
static int read_name(const unsigned char *m, size_t mlen, size_t *off, char *out, size_t cap) {
    size_t o = 0, pos = *off;
    int jumped = 0, hops = 0;
    for (;;) {
        if (pos >= mlen || hops > 64) return -1;
        unsigned char l = m[pos];
        if ((l & 0xC0) == 0xC0) {
            if (pos + 1 >= mlen) return -1;
            if (!jumped) *off = pos + 2;
            pos = ((size_t)(l & 0x3F) << 8) | m[pos + 1];
            jumped = 1;
            hops++;
            continue;
        }
        if (l == 0) {
            if (!jumped) *off = pos + 1;
            break;
        }
        if (pos + 1 + l > mlen || o + l + 2 > cap) return -1;
        if (o) out[o++] = '.';
        memcpy(out + o, m + pos + 1, l);
        o += l;
        pos += 1 + l;
    }
    out[o] = 0;
    return 0;
}

/* Writes the query for NAME into q; returns its length, or 0 when NAME is not a valid DNS name. */
static size_t dns_question(unsigned char *q, size_t cap, uint16_t id, int qtype, const char *name) {
    size_t n = 0;
    q[n++] = id >> 8;
    q[n++] = id & 0xff;
    q[n++] = 0x01; /* RD */
    q[n++] = 0;
    q[n++] = 0, q[n++] = 1; /* QDCOUNT */
    memset(q + n, 0, 6);
    n += 6;
    const char *label = name;
    while (*label) {
        const char *dot = strchr(label, '.');
        size_t l = dot ? (size_t)(dot - label) : strlen(label);
        if (l == 0 || l > 63 || n + l + 8 > cap) return 0;
        q[n++] = (unsigned char)l;
        memcpy(q + n, label, l);
        n += l;
        label += l + (dot ? 1 : 0);
        if (!dot) break;
    }
    q[n++] = 0;
    q[n++] = 0, q[n++] = (unsigned char)qtype;
    q[n++] = 0, q[n++] = 1; /* IN */
    return n;
}

static int dns_name_ok(const char *name) {
    unsigned char q[512];
    return dns_question(q, sizeof q, 0, 1, name) != 0;
}

/* Writes rcode= and answer= lines for an answer packet; ST_ERR when it is malformed. */
static int dns_answer(struct sbuf *out, const char *server, const unsigned char *r, size_t rl, struct dns_result *res) {
    res->rcode = r[3] & 0x0f;
    sb_printf(out, "server=%s\nrcode=%s\n", server, res->rcode < 6 ? RCODES[res->rcode] : "OTHER");
    size_t off = 12;
    int qd = (r[4] << 8) | r[5], an = (r[6] << 8) | r[7];
    char buf[1024];
    for (int i = 0; i < qd; i++) {
        if (read_name(r, rl, &off, buf, sizeof buf) < 0) goto malformed;
        off += 4;
    }
    for (int i = 0; i < an; i++) {
        if (read_name(r, rl, &off, buf, sizeof buf) < 0 || off + 10 > rl) goto malformed;
        int type = (r[off] << 8) | r[off + 1];
        size_t rdlen = (size_t)((r[off + 8] << 8) | r[off + 9]);
        off += 10;
        if (off + rdlen > rl) goto malformed;
        const unsigned char *rd = r + off;
        char val[1024] = "";
        size_t sub = off;
        if (type == 1 && rdlen == 4) {
            inet_ntop(AF_INET, rd, val, sizeof val);
            if (!res->has_a) memcpy(&res->a, rd, 4);
            res->has_a = 1;
        } else if (type == 28 && rdlen == 16) {
            inet_ntop(AF_INET6, rd, val, sizeof val);
        } else if (type == 5 || type == 2 || type == 12) {
            read_name(r, rl, &sub, val, sizeof val);
        } else if (type == 15 && rdlen > 2) {
            sub = off + 2;
            char host[900];
            if (read_name(r, rl, &sub, host, sizeof host) == 0) snprintf(val, sizeof val, "%d %s", (rd[0] << 8) | rd[1], host);
        } else if (type == 33 && rdlen > 6) { /* priority weight port target */
            sub = off + 6;
            char host[900];
            if (read_name(r, rl, &sub, host, sizeof host) == 0)
                snprintf(val, sizeof val, "%d %d %d %s", (rd[0] << 8) | rd[1], (rd[2] << 8) | rd[3], (rd[4] << 8) | rd[5], host);
        } else if (type == 16) {
            size_t p = 0, o = 0;
            while (p < rdlen && o < sizeof val - 1) {
                size_t l = rd[p++];
                for (size_t k = 0; k < l && p < rdlen && o < sizeof val - 1; k++, p++) val[o++] = (char)rd[p];
            }
            val[o] = 0;
        }
        flatten(val, strlen(val)); /* labels and TXT strings may hold any byte */
        const char *tname = "OTHER";
        for (const struct qtype *t = QTYPES; t->name; t++)
            if (t->code == type) tname = t->name;
        sb_printf(out, "answer=%s %s\n", tname, val);
        off += rdlen;
    }
    return ST_OK;
malformed:
    snprintf(res->why, sizeof res->why, "malformed answer from %s", server);
    sb_printf(out, "error=malformed answer\n");
    return ST_ERR;
}

/*
 * One query to one server, bounded by `t`. Appends the lines of today's
 * output: server=, rcode=, answer=... (ST_OK, whatever the rcode),
 * server= and reason= when nothing came back (ST_NEG), error= (ST_ERR).
 */
static int dns_query(struct sbuf *out, const char *server, int qtype, const char *name, struct bound t, struct dns_result *res) {
    struct sockaddr_storage ss;
    socklen_t len;
    unsigned char q[512];
    uint16_t id = random16();
    size_t n = dns_question(q, sizeof q, id, qtype, name);
    res->why[0] = 0;
    if (parse_addr(server, 53, &ss, &len) < 0)
        snprintf(res->why, sizeof res->why, "not a numeric server address: %s", server);
    else if (!n)
        snprintf(res->why, sizeof res->why, "invalid name: %s", name);
    if (res->why[0]) {
        flatten(res->why, strlen(res->why));
        sb_printf(out, "error=%s\n", res->why);
        return ST_ERR;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(res->why, sizeof res->why, "socket: %s", strerror(errno));
        sb_printf(out, "error=%s\n", res->why);
        return ST_ERR;
    }
    unsigned char r[4096];
    ssize_t rl = -1;
    if (connect(fd, (struct sockaddr *)&ss, len) < 0 || send(fd, q, n, 0) < 0) goto failed;
    for (;;) {
        int w = wait_fd(fd, POLLIN, t.end);
        if (w == 0) {
            close(fd);
            if (t.by_deadline) return ST_DEADLINE;
            snprintf(res->why, sizeof res->why, "no answer within %ld ms", t.ms);
            sb_printf(out, "server=%s\nreason=%s\n", server, res->why);
            return ST_NEG;
        }
        rl = recv(fd, r, sizeof r, 0);
        if (rl < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (rl < 0) goto failed; /* e.g. ECONNREFUSED: an ICMP port unreachable came back */
        if (rl >= 12 && r[0] == (id >> 8) && r[1] == (id & 0xff) && (r[2] & 0x80)) break;
    }
    close(fd);
    return dns_answer(out, server, r, (size_t)rl, res);
failed:
    snprintf(res->why, sizeof res->why, "%s", strerror(errno));
    sb_printf(out, "server=%s\nreason=%s\n", server, res->why);
    close(fd);
    return ST_NEG;
}

/* The machine's resolver configuration: up to three nameserver lines of /etc/resolv.conf, as libc reads them. */
static int nameservers(char servers[3][64], char *why, size_t cap) {
    struct sbuf conf;
    const char *type;
    int more, count = 0;
    sb_init(&conf, 65536);
    int rc = read_regular("/etc/resolv.conf", 65535, &conf, &more, &type);
    if (rc < 0) snprintf(why, cap, "no /etc/resolv.conf: %s", strerror(errno));
    if (rc > 0) snprintf(why, cap, "/etc/resolv.conf is not a regular file (%s)", type);
    if (rc == 0 && sb_add(&conf, "", 1) == 0) {
        for (char *save, *line = strtok_r(conf.p, "\n", &save); line && count < 3; line = strtok_r(NULL, "\n", &save))
            if (sscanf(line, " nameserver %63s", servers[count]) == 1) count++;
        if (!count) snprintf(why, cap, "no nameserver in /etc/resolv.conf");
    }
    free(conf.p);
    return count;
}

/* Each nameserver of the machine in turn, as libc does, until one answers; all within `t`. */
static int dns_ask_machine(struct sbuf *out, int qtype, const char *name, long ms, struct bound t, struct dns_result *res) {
    char servers[3][64];
    int count = nameservers(servers, res->why, sizeof res->why);
    if (!count) {
        sb_printf(out, "reason=%s\n", res->why);
        return ST_NEG;
    }
    /* A share of MS each, at least 300 ms, as long as MS lasts. */
    int rc = ST_NEG;
    for (int i = 0; i < count && rc == ST_NEG; i++)
        rc = dns_query(out, servers[i], qtype, name, count == 1 ? t : clip(t, ms / count > 300 ? ms / count : 300), res);
    return rc;
}

/* dns TYPE NAME MS [SERVER], for serve and the one-shot subcommand alike. */
static int dns_lookup(struct sbuf *out, const char *type, const char *name, long ms, const char *server) {
    int qtype = 0;
    struct dns_result res = {0};
    for (const struct qtype *t = QTYPES; t->name; t++)
        if (!strcasecmp(t->name, type)) qtype = t->code;
    if (!qtype) return reply(out, ST_ERR, "error=unsupported record type %s\n", type);
    struct bound t = bound_ms(ms);
    if (server) return dns_query(out, server, qtype, name, t, &res);
    return dns_ask_machine(out, qtype, name, ms, t, &res);
}


/* ---------- serve: files ---------- */

#define MS_MAX 999999999UL
#define BYTES_MAX 1048576UL
#define LIST_MAX 10000
#define LISTING_MAX (8UL << 20) /* payload of list, procs and cgroup */

/* lstat PATH: metadata only. Nothing is opened, so nothing planted at PATH can block or answer for itself. */
static int verb_lstat(int n, char **a, struct sbuf *out) {
    (void)n;
    struct stat st;
    if (lstat(a[0], &st) < 0) return missing_or_err(out, errno);
    sb_printf(out, "type=%s\nmode=%04o\nuid=%u\ngid=%u\nsize=%lld\n", type_name(st.st_mode), (unsigned)(st.st_mode & 07777),
              (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_size);
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX + 1];
        ssize_t l = readlink(a[0], target, sizeof target - 1);
        if (l < 0) l = 0;
        target[l] = 0;
        flatten(target, (size_t)l);
        sb_printf(out, "target=%s\n", target);
    }
    return ST_OK;
}

/* read PATH MAXBYTES: a regular file's first bytes (read_regular says why nothing else is ever read). */
static int verb_read(int n, char **a, struct sbuf *out) {
    (void)n;
    unsigned long max;
    int more;
    const char *type;
    if (parse_num(a[1], BYTES_MAX, &max) < 0) return reply(out, ST_ERR, "MAXBYTES must be a number up to %lu: %s", BYTES_MAX, a[1]);
    out->limit = max;
    int rc = read_regular(a[0], max, out, &more, &type);
    if (rc > 0) return reply(out, ST_ERR, "not a regular file (%s)", type);
    if (rc < 0) return missing_or_err(out, errno);
    return more ? ST_PART : ST_OK;
}

struct entry {
    char *name;
    unsigned char d_type;
};

static int by_name(const void *x, const void *y) {
    return strcmp(((const struct entry *)x)->name, ((const struct entry *)y)->name);
}

/*
 * list DIR: the directory's entries as the kernel returns them. The first
 * LIST_MAX entries read (in the directory's own order) are sorted and
 * reported; a longer directory, or more than LISTING_MAX of payload, is part.
 */
static int verb_list(int n, char **a, struct sbuf *out) {
    (void)n;
    int fd = open(a[0], O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        struct stat st;
        if (e == ENOTDIR && stat(a[0], &st) == 0) return reply(out, ST_ERR, "not a directory (%s)", type_name(st.st_mode));
        return missing_or_err(out, e);
    }
    DIR *d = fdopendir(fd);
    struct entry *entries = malloc(LIST_MAX * sizeof *entries);
    if (!d || !entries) {
        if (d) closedir(d);
        else close(fd);
        free(entries);
        return reply(out, ST_ERR, "%s", strerror(errno));
    }
    size_t count = 0;
    int more = 0, rc = ST_OK;
    struct dirent *e;
    for (errno = 0; (e = readdir(d)); errno = 0) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (count == LIST_MAX) {
            more = 1;
            break;
        }
        if (now_ms() >= g_deadline) break;
        if (!(entries[count].name = strdup(e->d_name))) {
            out->oom = 1;
            break;
        }
        entries[count++].d_type = e->d_type;
    }
    if (!e && errno) rc = reply(out, ST_ERR, "%s", strerror(errno));
    if (now_ms() >= g_deadline) rc = ST_DEADLINE;
    qsort(entries, count, sizeof *entries, by_name);
    struct sbuf line;
    sb_init(&line, 2 * PATH_MAX);
    out->limit = LISTING_MAX;
    for (size_t i = 0; i < count && rc == ST_OK; i++) {
        struct stat st;
        const char *type = type_name(DTTOIF(entries[i].d_type));
        char target[PATH_MAX + 1] = "";
        if (fstatat(dirfd(d), entries[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            type = type_name(st.st_mode);
        else if (errno == ENOENT)
            continue; /* gone since readdir */
        if (!strcmp(type, "symlink")) {
            ssize_t l = readlinkat(dirfd(d), entries[i].name, target, sizeof target - 1);
            target[l > 0 ? l : 0] = 0;
        }
        flatten(entries[i].name, strlen(entries[i].name));
        flatten(target, strlen(target));
        sb_clear(&line);
        sb_printf(&line, "%s\t%s\t%s\n", type, entries[i].name, target);
        if (sb_add_line(out, &line) < 0) more = 1;
        if (out->cut) break;
    }
    for (size_t i = 0; i < count; i++) free(entries[i].name);
    free(entries);
    free(line.p);
    closedir(d);
    if (rc != ST_OK) return rc;
    return more ? ST_PART : ST_OK;
}

/* statfs PATH: block and inode counts of the file system holding PATH (statvfs; no file is opened). */
static int verb_statfs(int n, char **a, struct sbuf *out) {
    (void)n;
    struct statvfs s;
    if (statvfs(a[0], &s) < 0) return missing_or_err(out, errno);
    sb_printf(out, "bsize=%llu\nblocks=%llu\nbfree=%llu\nbavail=%llu\nfiles=%llu\nffree=%llu\n", (unsigned long long)s.f_frsize,
              (unsigned long long)s.f_blocks, (unsigned long long)s.f_bfree, (unsigned long long)s.f_bavail,
              (unsigned long long)s.f_files, (unsigned long long)s.f_ffree);
    return ST_OK;
}

/*
 * xattr PATH NAME: one extended attribute of PATH itself (not of a link's
 * target), raw: e.g. system.posix_acl_access, the kernel's own encoding of an
 * access ACL. Nothing is opened. neg `none` when PATH has no such attribute.
 */
static int verb_xattr(int n, char **a, struct sbuf *out) {
    (void)n;
    char value[65536];
    ssize_t len = lgetxattr(a[0], a[1], value, sizeof value);
    if (len < 0) {
        if (errno == ENODATA || errno == ENOTSUP) return reply(out, ST_NEG, "none");
        if (errno == ERANGE) return reply(out, ST_ERR, "attribute larger than %zu bytes", sizeof value);
        return missing_or_err(out, errno);
    }
    sb_add(out, value, (size_t)len);
    return ST_OK;
}

/* ---------- serve: processes ---------- */

#define PROC_SUPER_MAGIC 0x9fa0L
#define CGROUP_SUPER_MAGIC 0x27e0ebL
#define CGROUP2_SUPER_MAGIC 0x63677270L

/* Whether PATH is on a file system of either kind: a tmpfs dressed up as /proc is not the kernel's word. */
static int fs_is(const char *path, long kind1, long kind2) {
    struct statfs s;
    return statfs(path, &s) == 0 && ((long)s.f_type == kind1 || (long)s.f_type == kind2);
}

/* One file of /proc/PID, NUL-terminated in b; -1 with errno (ENOENT or ESRCH: the process is gone). */
static int proc_file(pid_t pid, const char *name, size_t max, struct sbuf *b) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    return read_text(path, max, b);
}

/* Where /proc/PID/exe points; empty when unreadable (kernel threads, zombies). */
static void proc_exe(pid_t pid, char *out, size_t cap) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    ssize_t l = readlink(path, out, cap - 1);
    out[l > 0 ? l : 0] = 0;
    flatten(out, strlen(out));
}

/* The command line, NULs as spaces (trailing ones dropped), at most 4096 bytes; -1 when the process is gone. */
static int proc_cmdline(pid_t pid, struct sbuf *b) {
    if (proc_file(pid, "cmdline", 4096, b) < 0) {
        if (errno == ENOENT || errno == ESRCH) return -1;
        sb_clear(b);
        return sb_add(b, "", 1);
    }
    size_t len = b->len - 1;
    while (len && b->p[len - 1] == 0) len--;
    for (size_t i = 0; i < len; i++)
        if (b->p[i] == 0) b->p[i] = ' ';
    flatten(b->p, len);
    b->p[len] = 0;
    b->len = len + 1;
    return 0;
}

/* The cgroup path of the name=systemd hierarchy, else of the unified (0::) one, else empty. */
static void proc_cgroup(pid_t pid, struct sbuf *tmp, char *out, size_t cap) {
    const char *named = NULL, *unified = NULL;
    out[0] = 0;
    if (proc_file(pid, "cgroup", 65536, tmp) < 0) return;
    for (char *save, *line = strtok_r(tmp->p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        if (!named && !strcmp(c1 + 1, "name=systemd")) named = c2 + 1;
        if (!unified && c1 == line + 1 && line[0] == '0' && c2 == c1 + 1) unified = c2 + 1;
    }
    snprintf(out, cap, "%s", named ? named : unified ? unified : "");
    flatten(out, strlen(out));
}

/*
 * The machine's own root in the cgroup tree: PID 1's cgroup, without the
 * init.scope systemd keeps itself in. "/" in a private cgroup namespace; on
 * an engine that gives containers the host's (a lab host elsewhere, seen
 * read-only), the container's path, e.g. /docker/ID.
 */
static const char *machine_cgroup_root(void) {
    static char root[PATH_MAX];
    static int known;
    if (known) return root;
    struct sbuf tmp;
    sb_init(&tmp, 0);
    proc_cgroup(1, &tmp, root, sizeof root);
    free(tmp.p);
    size_t len = strlen(root);
    const char *scope = "/init.scope";
    if (len >= strlen(scope) && !strcmp(root + len - strlen(scope), scope)) root[len - strlen(scope)] = 0;
    len = strlen(root);
    while (len && root[len - 1] == '/') root[--len] = 0;
    known = 1;
    return root;
}

/* A process's cgroup as the machine sees it: below its own root. */
static void machine_cgroup(pid_t pid, struct sbuf *tmp, char *out, size_t cap) {
    proc_cgroup(pid, tmp, out, cap);
    const char *root = machine_cgroup_root();
    size_t len = strlen(root);
    if (len && !strncmp(out, root, len) && (out[len] == '/' || out[len] == 0)) memmove(out, out + len, strlen(out + len) + 1);
    if (!out[0] && len) snprintf(out, cap, "/");
}

static int by_pid(const void *x, const void *y) {
    pid_t a = *(const pid_t *)x, b = *(const pid_t *)y;
    return (a > b) - (a < b);
}

/* The numeric entries of /proc, sorted; NULL with errno on failure. */
static pid_t *all_pids(size_t *count) {
    DIR *d = opendir("/proc");
    size_t cap = 1024;
    pid_t *pids = malloc(cap * sizeof *pids);
    if (!d || !pids) {
        if (d) closedir(d);
        free(pids);
        return NULL;
    }
    *count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && *count < (1u << 22)) {
        unsigned long pid;
        if (parse_num(e->d_name, INT_MAX, &pid) < 0) continue;
        if (*count == cap) {
            pid_t *more = realloc(pids, 2 * cap * sizeof *pids);
            if (!more) break;
            pids = more;
            cap *= 2;
        }
        pids[(*count)++] = (pid_t)pid;
    }
    closedir(d);
    qsort(pids, *count, sizeof *pids, by_pid);
    return pids;
}

/*
 * procs: every process, from /proc (checked to be procfs), but the probe and
 * its children. Nothing of the machine is run; a process that exits while it
 * is read is left out.
 */
static int verb_procs(int n, char **a, struct sbuf *out) {
    (void)n, (void)a;
    if (!fs_is("/proc", PROC_SUPER_MAGIC, PROC_SUPER_MAGIC)) return reply(out, ST_ERR, "/proc is not a procfs mount");
    size_t count;
    pid_t *pids = all_pids(&count), self = getpid();
    if (!pids) return reply(out, ST_ERR, "cannot list /proc: %s", strerror(errno));
    struct sbuf tmp, cmd, line;
    sb_init(&tmp, 0), sb_init(&cmd, 0), sb_init(&line, 64 * 1024);
    out->limit = LISTING_MAX;
    int rc = ST_OK;
    for (size_t i = 0; i < count && rc == ST_OK && !out->cut; i++) {
        char comm[64] = "", exe[PATH_MAX + 1], cgroup[PATH_MAX + 1];
        int ppid = 0;
        long uid = -1;
        if (now_ms() >= g_deadline) rc = ST_DEADLINE;
        /* stat: "pid (comm) state ppid ...", where comm may hold spaces and parentheses */
        if (rc != ST_OK || proc_file(pids[i], "stat", 4096, &tmp) < 0) continue;
        char *lp = strchr(tmp.p, '('), *rp = strrchr(tmp.p, ')');
        if (!lp || !rp || rp < lp || sscanf(rp + 1, " %*c %d", &ppid) != 1) continue;
        snprintf(comm, sizeof comm, "%.*s", (int)(rp - lp - 1), lp + 1);
        flatten(comm, strlen(comm));
        if (pids[i] == self || ppid == self) continue;
        if (proc_file(pids[i], "status", 65536, &tmp) < 0) continue;
        const char *u = strstr(tmp.p, "\nUid:");
        if (!u || sscanf(u + 5, " %ld", &uid) != 1) continue;
        proc_exe(pids[i], exe, sizeof exe);
        machine_cgroup(pids[i], &tmp, cgroup, sizeof cgroup);
        if (proc_cmdline(pids[i], &cmd) < 0) continue;
        sb_clear(&line);
        sb_printf(&line, "%d\t%d\t%ld\t%s\t%s\t%s\t%s\n", (int)pids[i], ppid, uid, comm, exe, cgroup, cmd.p);
        sb_add_line(out, &line);
    }
    free(pids), free(tmp.p), free(cmd.p), free(line.p);
    if (rc == ST_OK && out->cut) rc = ST_PART;
    return rc;
}

/*
 * cgroup RELPATH: the processes of one cgroup, from the kernel's cgroup file
 * system (the systemd hierarchy of cgroup v1, else the unified one), so that
 * a unit's processes are found whatever they call themselves.
 */
static int verb_cgroup(int n, char **a, struct sbuf *out) {
    (void)n;
    static const char *const ROOTS[] = {"/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
    const char *rel = a[0];
    char dir[PATH_MAX], path[PATH_MAX + 32];
    if (rel[0] == '/') return reply(out, ST_ERR, "RELPATH must be relative: %s", rel);
    for (const char *c = rel; *c;) {
        const char *slash = strchrnul(c, '/');
        if (slash - c == 2 && c[0] == '.' && c[1] == '.') return reply(out, ST_ERR, "RELPATH must not hold '..': %s", rel);
        c = *slash ? slash + 1 : slash;
    }
    int found = 0;
    for (size_t i = 0; i < 3 && !found; i++) {
        struct stat st;
        if ((size_t)snprintf(dir, sizeof dir, "%s%s/%s", ROOTS[i], machine_cgroup_root(), rel) >= sizeof dir) return reply(out, ST_ERR, "RELPATH too long");
        found = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (!found) return reply(out, ST_NEG, "missing");
    if (!fs_is(dir, CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC)) return reply(out, ST_ERR, "%s is not on a cgroup file system", dir);
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    struct sbuf procs, cmd, line;
    sb_init(&procs, 0), sb_init(&cmd, 0), sb_init(&line, 16 * 1024);
    if (read_text(path, 4UL << 20, &procs) < 0) {
        free(procs.p);
        return reply(out, ST_ERR, "cannot read %s: %s", path, strerror(errno));
    }
    /* One pid a line; cgroup v1 may repeat one, so sort and skip repeats. */
    size_t count = 0;
    pid_t *pids = malloc((procs.len / 2 + 1) * sizeof *pids);
    for (char *save, *l = strtok_r(procs.p, "\n", &save); pids && l; l = strtok_r(NULL, "\n", &save)) {
        unsigned long pid;
        if (parse_num(l, INT_MAX, &pid) == 0 && pid > 0) pids[count++] = (pid_t)pid;
    }
    free(procs.p);
    if (!pids) return reply(out, ST_ERR, "out of memory");
    qsort(pids, count, sizeof *pids, by_pid);
    out->limit = LISTING_MAX;
    int rc = ST_OK;
    for (size_t i = 0; i < count && rc == ST_OK && !out->cut; i++) {
        char exe[PATH_MAX + 1];
        if (now_ms() >= g_deadline) rc = ST_DEADLINE;
        if (rc != ST_OK || (i > 0 && pids[i] == pids[i - 1])) continue;
        proc_exe(pids[i], exe, sizeof exe);
        if (proc_cmdline(pids[i], &cmd) < 0) continue;
        sb_clear(&line);
        sb_printf(&line, "%d\t%s\t%s\n", (int)pids[i], exe, cmd.p);
        sb_add_line(out, &line);
    }
    free(pids), free(cmd.p), free(line.p);
    if (rc == ST_OK && out->cut) rc = ST_PART;
    return rc;
}

/* ---------- serve: network ---------- */

/* A non-blocking TCP connect bounded by t: 0 with *fdp set, -1 when t ran out, else the errno. */
static int tcp_connect(const struct sockaddr_storage *ss, socklen_t len, struct bound t, int *fdp) {
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    int err = 0;
    if (connect(fd, (const struct sockaddr *)ss, len) < 0) err = errno;
    if (err == EINPROGRESS) {
        socklen_t el = sizeof err;
        int w = wait_fd(fd, POLLOUT, t.end);
        if (w == 0) {
            close(fd);
            return -1;
        }
        if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
    }
    if (err) {
        close(fd);
        return err;
    }
    *fdp = fd;
    return 0;
}

/* connect ADDR PORT MS: whether TCP to ADDR:PORT is accepted from this machine; the kernel's own answer. */
static int verb_connect(int n, char **a, struct sbuf *out) {
    (void)n;
    unsigned long port, ms;
    struct sockaddr_storage ss;
    socklen_t len;
    int fd;
    if (parse_num(a[1], 65535, &port) < 0 || port == 0) return reply(out, ST_ERR, "bad PORT: %s", a[1]);
    if (parse_num(a[2], MS_MAX, &ms) < 0) return reply(out, ST_ERR, "bad MS: %s", a[2]);
    if (parse_addr(a[0], (int)port, &ss, &len) < 0) return reply(out, ST_ERR, "not a numeric address: %s", a[0]);
    struct bound t = bound_ms((long)ms);
    long start = now_ms();
    int rc = tcp_connect(&ss, len, t, &fd);
    if (rc == 0) {
        close(fd);
        return reply(out, ST_OK, "ms=%ld\n", now_ms() - start);
    }
    if (rc < 0 && t.by_deadline) return ST_DEADLINE;
    if (rc < 0) return reply(out, ST_NEG, "reason=no answer within %lu ms\n", ms);
    return reply(out, ST_NEG, "reason=%s\n", strerror(rc));
}

static uint16_t inet_sum(const unsigned char *p, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1) s += (uint32_t)p[n - 1] << 8;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

/*
 * ping ADDR MS: whether ADDR answers an ICMP echo sent from this machine:
 * through an unprivileged ICMP socket where the machine allows one, else a
 * raw socket. Only a reply carrying this echo's sequence number and random
 * payload counts.
 */
static int verb_ping(int n, char **a, struct sbuf *out) {
    (void)n;
    struct sockaddr_in dst = {.sin_family = AF_INET};
    unsigned long ms;
    if (inet_pton(AF_INET, a[0], &dst.sin_addr) != 1) return reply(out, ST_ERR, "not a numeric IPv4 address: %s", a[0]);
    if (parse_num(a[1], MS_MAX, &ms) < 0) return reply(out, ST_ERR, "bad MS: %s", a[1]);
    int raw = 0, fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
    char dgram_err[128];
    snprintf(dgram_err, sizeof dgram_err, "%s", strerror(errno));
    if (fd < 0) {
        raw = 1;
        fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
    }
    if (fd < 0) return reply(out, ST_ERR, "cannot open an ICMP socket: %s (datagram), %s (raw)", dgram_err, strerror(errno));

    unsigned char echo[8 + 16] = {8, 0}; /* type 8, code 0, checksum, id, sequence, payload */
    uint16_t id = random16(), seq = random16(), sum;
    memcpy(echo + 4, &id, 2);
    memcpy(echo + 6, &seq, 2);
    for (size_t i = 8; i < sizeof echo; i += 2) {
        uint16_t r = random16();
        memcpy(echo + i, &r, 2);
    }
    sum = htons(inet_sum(echo, sizeof echo)); /* the datagram socket sets id and checksum itself */
    memcpy(echo + 2, &sum, 2);

    struct bound t = bound_ms((long)ms);
    long sent = now_ms();
    int rc = ST_NEG;
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 || send(fd, echo, sizeof echo, 0) < 0) {
        rc = reply(out, ST_NEG, "reason=%s\n", strerror(errno));
        goto done;
    }
    for (;;) {
        unsigned char r[1500];
        if (wait_fd(fd, POLLIN, t.end) == 0) {
            rc = t.by_deadline ? ST_DEADLINE : reply(out, ST_NEG, "reason=no reply within %lu ms\n", ms);
            break;
        }
        ssize_t rl = recv(fd, r, sizeof r, 0);
        if (rl < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (rl < 0) {
            rc = reply(out, ST_NEG, "reason=%s\n", strerror(errno));
            break;
        }
        const unsigned char *icmp = r;
        size_t il = (size_t)rl;
        if (raw) { /* a raw socket sees the IP header, and every ICMP packet from ADDR (our echo too, on loopback) */
            size_t ihl = (size_t)(r[0] & 0x0f) * 4;
            if (il < 20 || ihl < 20 || ihl > il || r[9] != IPPROTO_ICMP || memcmp(r + 12, &dst.sin_addr, 4)) continue;
            icmp += ihl;
            il -= ihl;
        }
        if (il < sizeof echo || icmp[0] != 0 || icmp[1] != 0) continue;
        if ((raw && memcmp(icmp + 4, echo + 4, 2)) || memcmp(icmp + 6, echo + 6, sizeof echo - 6)) continue;
        rc = reply(out, ST_OK, "ms=%ld\n", now_ms() - sent);
        break;
    }
done:
    close(fd);
    return rc;
}

/*
 * dns TYPE NAME MS [SERVER]: what a DNS server tells this machine (see
 * dns_query). The answer is the server's word, and the server the machine's
 * configuration names: that configuration is what such a check is about.
 */
static int verb_dns(int n, char **a, struct sbuf *out) {
    unsigned long ms;
    if (parse_num(a[2], MS_MAX, &ms) < 0) return reply(out, ST_ERR, "bad MS: %s", a[2]);
    return dns_lookup(out, a[0], a[1], (long)ms, n == 4 ? a[3] : NULL);
}

/* The first non-comment line of /etc/hosts with an IPv4 address and NAME (any case) among its names. */
static int hosts_lookup(const char *name, struct in_addr *addr) {
    struct sbuf hosts;
    int found = 0;
    sb_init(&hosts, 0);
    if (read_text("/etc/hosts", BYTES_MAX, &hosts) == 0) {
        for (char *save, *line = strtok_r(hosts.p, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
            char *fields, *ip;
            line[strcspn(line, "#")] = 0;
            if (!(ip = strtok_r(line, " \t\r", &fields)) || inet_pton(AF_INET, ip, addr) != 1) continue;
            for (char *alias; !found && (alias = strtok_r(NULL, " \t\r", &fields));) found = !strcasecmp(alias, name);
        }
    }
    free(hosts.p);
    return found;
}

/*
 * NAME's IPv4 address as the machine's resolver finds it: a literal, then
 * /etc/hosts, then an A query to the resolv.conf servers (no search domains).
 * ST_NEG with why set when it cannot be resolved.
 */
static int resolve4(const char *name, long ms, struct bound t, struct in_addr *addr, const char **source, char *why, size_t cap) {
    *source = inet_pton(AF_INET, name, addr) == 1 ? "literal" : hosts_lookup(name, addr) ? "hosts" : NULL;
    if (*source) return ST_OK;
    if (!dns_name_ok(name)) {
        snprintf(why, cap, "not a valid DNS name");
        return ST_NEG;
    }
    struct sbuf lines;
    struct dns_result res = {0};
    sb_init(&lines, 1 << 16);
    int rc = dns_ask_machine(&lines, 1, name, ms, t, &res);
    free(lines.p);
    if (rc == ST_DEADLINE) return rc;
    if (rc == ST_OK && res.has_a) {
        *addr = res.a;
        *source = "dns";
        return ST_OK;
    }
    if (rc == ST_OK)
        snprintf(why, cap, "%s", res.rcode ? (res.rcode < 6 ? RCODES[res.rcode] : "error") : "no A record");
    else
        snprintf(why, cap, "%s", res.why);
    return ST_NEG;
}

/*
 * resolve NAME MS: which address a program on this machine would reach for
 * NAME (see resolve4): the machine's /etc/hosts and resolver are trusted, as
 * its programs trust them; only the files' contents are read, never a FIFO.
 */
static int verb_resolve(int n, char **a, struct sbuf *out) {
    (void)n;
    unsigned long ms;
    struct in_addr addr;
    const char *source;
    char why[300], text[INET_ADDRSTRLEN];
    if (parse_num(a[1], MS_MAX, &ms) < 0) return reply(out, ST_ERR, "bad MS: %s", a[1]);
    int rc = resolve4(a[0], (long)ms, bound_ms((long)ms), &addr, &source, why, sizeof why);
    if (rc == ST_NEG) return reply(out, ST_NEG, "reason=cannot resolve %s: %s\n", a[0], why);
    if (rc != ST_OK) return rc;
    inet_ntop(AF_INET, &addr, text, sizeof text);
    return reply(out, ST_OK, "address=%s\nsource=%s\n", text, source);
}

#define HTTP_HEADERS_MAX 16384

/* Where the headers end (after the blank line), or 0 while they have not. */
static size_t headers_end(const char *h, size_t n) {
    for (size_t i = 0; i + 1 < n; i++) {
        if (h[i] == '\n' && h[i + 1] == '\n') return i + 2;
        if (i + 3 < n && !memcmp(h + i, "\r\n\r\n", 4)) return i + 4;
    }
    return 0;
}

/* How many body bytes the headers announce: Content-Length, 0 for 204 and 304, -1 when they do not say. */
static long long body_length(const char *h, size_t n) {
    char copy[HTTP_HEADERS_MAX + 1];
    int status = 0;
    memcpy(copy, h, n);
    copy[n] = 0;
    if (sscanf(copy, "HTTP/%*u.%*u %d", &status) == 1 && (status == 204 || status == 304)) return 0;
    for (char *save, *line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        unsigned long len;
        if (strncasecmp(line, "Content-Length:", 15)) continue;
        line += 15;
        line += strspn(line, " \t");
        line[strcspn(line, " \t")] = 0;
        return parse_num(line, 9999999999UL, &len) == 0 ? (long long)len : -1;
    }
    return -1;
}

/* Sends all of buf on a non-blocking socket before t ends; 0, -1 when t ran out, else the errno. */
static int send_all(int fd, const char *buf, size_t n, struct bound t) {
    while (n) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) return errno;
        if (w < 0) {
            if (wait_fd(fd, POLLOUT, t.end) == 0) return -1;
            continue;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * The response to a request already sent: its headers (at most
 * HTTP_HEADERS_MAX) and at most maxbody bytes of body, raw, into out.
 */
static int http_response(int fd, unsigned long maxbody, unsigned long ms, struct bound t, struct sbuf *out) {
    char h[HTTP_HEADERS_MAX], chunk[16384];
    size_t hl = 0, hend = 0;
    while (!hend) {
        if (hl == sizeof h) return reply(out, ST_ERR, "headers too large");
        if (wait_fd(fd, POLLIN, t.end) == 0)
            return t.by_deadline ? ST_DEADLINE : reply(out, ST_NEG, "reason=no response within %lu ms\n", ms);
        ssize_t r = read(fd, h + hl, sizeof h - hl);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r < 0) return reply(out, ST_NEG, "reason=%s\n", strerror(errno));
        if (r == 0 && hl == 0) return reply(out, ST_NEG, "reason=the connection closed without a response\n");
        if (r == 0) return reply(out, ST_NEG, "reason=the connection closed within the headers, after %zu bytes\n", hl);
        hl += (size_t)r;
        hend = headers_end(h, hl);
    }
    long long announced = body_length(h, hend);
    unsigned long long body = hl - hend;
    out->limit = hend + maxbody;
    sb_add(out, h, hl); /* the headers and what came of the body with them */
    /* Read to EOF (the server closes: Connection: close), or as far as Content-Length or the limit. */
    while (!out->cut && (announced < 0 || body < (unsigned long long)announced)) {
        if (wait_fd(fd, POLLIN, t.end) == 0) return ST_PART; /* an answer, cut by time */
        size_t want = maxbody - (out->len - hend) + 1;
        ssize_t r = read(fd, chunk, want < sizeof chunk ? want : sizeof chunk);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r <= 0) break;
        body += (unsigned long long)r;
        sb_add(out, chunk, (size_t)r);
    }
    return out->cut ? ST_PART : ST_OK;
}

/*
 * http HOST PORT HOSTHEADER PATH MS MAXBODY: what a client on this machine
 * gets from a web server, byte for byte. HOST is found as `resolve` finds it
 * (a literal IPv6 address is taken too). The response is not interpreted
 * beyond the end of its headers and its Content-Length; a body still coming
 * when time runs out is part.
 */
static int verb_http(int n, char **a, struct sbuf *out) {
    (void)n;
    const char *host = a[0], *vhost = a[2], *path = a[3];
    unsigned long port, ms, maxbody;
    if (parse_num(a[1], 65535, &port) < 0 || port == 0) return reply(out, ST_ERR, "bad PORT: %s", a[1]);
    if (parse_num(a[4], MS_MAX, &ms) < 0) return reply(out, ST_ERR, "bad MS: %s", a[4]);
    if (parse_num(a[5], BYTES_MAX, &maxbody) < 0) return reply(out, ST_ERR, "MAXBODY must be a number up to %lu: %s", BYTES_MAX, a[5]);
    if (path[0] != '/' || strpbrk(path, " \r")) return reply(out, ST_ERR, "PATH must start with / and hold no space or CR: %s", path);
    if (strchr(vhost, '\r')) return reply(out, ST_ERR, "HOSTHEADER must hold no CR");

    struct bound t = bound_ms((long)ms);
    struct sockaddr_storage ss;
    socklen_t len;
    if (parse_addr(host, (int)port, &ss, &len) < 0) {
        struct in_addr addr;
        const char *source;
        char why[300], text[INET_ADDRSTRLEN];
        int rc = resolve4(host, (long)ms, t, &addr, &source, why, sizeof why);
        if (rc == ST_NEG) return reply(out, ST_NEG, "reason=cannot resolve %s: %s\n", host, why);
        if (rc != ST_OK) return rc;
        parse_addr(inet_ntop(AF_INET, &addr, text, sizeof text), (int)port, &ss, &len);
    }
    int fd, rc = tcp_connect(&ss, len, t, &fd);
    if (rc < 0) return t.by_deadline ? ST_DEADLINE : reply(out, ST_NEG, "reason=cannot connect: no answer within %lu ms\n", ms);
    if (rc > 0) return reply(out, ST_NEG, "reason=cannot connect: %s\n", strerror(rc));

    struct sbuf req;
    sb_init(&req, 3 * 65536);
    sb_printf(&req, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: examlab-probe\r\nConnection: close\r\n\r\n", path, vhost);
    rc = req.oom ? ENOMEM : send_all(fd, req.p, req.len, t);
    free(req.p);
    if (rc < 0) rc = t.by_deadline ? ST_DEADLINE : reply(out, ST_NEG, "reason=no response within %lu ms\n", ms);
    else if (rc > 0) rc = reply(out, ST_NEG, "reason=%s\n", strerror(rc));
    else rc = http_response(fd, maxbody, ms, t, out);
    close(fd);
    return rc;
}

/* ---------- serve: commands ---------- */

#define RUN_KEEP 65536 /* bytes kept of each of stdout and stderr */

static int sigchld_pipe[2] = {-1, -1};      /* SIGCHLD wakes the poll of run */
static _Atomic pid_t running_group = 0;    /* the process group of the command running, for the watchdog */

static void drain_wakeups(void) {
    char buf[64];
    while (read(sigchld_pipe[0], buf, sizeof buf) > 0) {
    }
}

static void on_sigchld(int sig) {
    (void)sig;
    int e = errno;
    if (write(sigchld_pipe[1], "", 1) < 0) { /* full: a wake-up is pending anyway */
    }
    errno = e;
}

/* In the child: fd `from` as `to`, kept across exec. */
static void move_fd(int from, int to) {
    if (from == to)
        fcntl(to, F_SETFD, 0);
    else
        dup2(from, to);
}

/* The machine's /dev/null if it is the null device, else an empty pipe: a FIFO planted there must not feed the command. */
static int null_input(void) {
    struct stat st;
    int fd = open("/dev/null", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY), p[2];
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) return fd;
    if (fd >= 0) close(fd);
    if (pipe2(p, O_CLOEXEC) < 0) return -1;
    close(p[1]);
    return p[0];
}

struct capture {
    int fd;
    struct sbuf kept; /* the first RUN_KEEP bytes; the rest is read and dropped so the command never blocks */
};

/* Reads what is there now, up to a bound (a writer may never pause); closes the pipe at EOF. */
static void capture_read(struct capture *c) {
    char chunk[16384];
    for (int i = 0; i < 64 && c->fd >= 0; i++) {
        ssize_t r = read(c->fd, chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EAGAIN) return;
        if (r <= 0) {
            close(c->fd);
            c->fd = -1;
            return;
        }
        sb_add(&c->kept, chunk, (size_t)r);
    }
}

/*
 * Runs argv in its own process group with a fixed environment, stdin at
 * EOF and stdout and stderr captured, until it exits or `t` ends. Then the
 * whole group is killed (nothing the grader started outlives its request)
 * and the command reaped. Returns 0 with *status (exec_err set when the
 * program could not be run at all), or an errno.
 */
static int run_command(char *const argv[], struct bound t, struct capture cap[2], int *status, int *timed_out, int *exec_err) {
    static char *const ENV[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root", NULL};
    int in = null_input(), out[2] = {-1, -1}, err[2] = {-1, -1}, report[2] = {-1, -1};
    if (in < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(report, O_CLOEXEC) < 0) {
        int e = errno;
        int fds[] = {in, out[0], out[1], err[0], err[1], report[0], report[1]};
        for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
            if (fds[i] >= 0) close(fds[i]);
        return e;
    }
    drain_wakeups();
    pid_t pid = fork();
    if (pid == 0) { /* only async-signal-safe calls from here to exec */
        sigset_t none;
        sigemptyset(&none);
        signal(SIGPIPE, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setpgid(0, 0);
        move_fd(in, 0);
        move_fd(out[1], 1);
        move_fd(err[1], 2);
        if (chdir("/") < 0) {
        }
        execve(argv[0], argv, ENV);
        int e = errno;
        if (write(report[1], &e, sizeof e) < 0) {
        }
        _exit(127);
    }
    int fork_err = errno;
    close(in), close(out[1]), close(err[1]), close(report[1]);
    if (pid < 0) {
        close(out[0]), close(err[0]), close(report[0]);
        return fork_err;
    }
    cap[0].fd = out[0], cap[1].fd = err[0];
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    setpgid(pid, pid); /* also here: the kill below must not race the child's own setpgid */
    running_group = pid;

    *timed_out = 0;
    int failed = 0;
    for (;;) {
        siginfo_t si = {0};
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid) break;
        long left = t.end - now_ms();
        if (left <= 0) {
            *timed_out = 1;
            break;
        }
        struct pollfd p[3] = {{sigchld_pipe[0], POLLIN, 0}, {cap[0].fd, POLLIN, 0}, {cap[1].fd, POLLIN, 0}};
        if (sigchld_pipe[0] < 0 && left > 50) left = 50; /* no wake-up on exit: look again soon */
        if (poll(p, 3, left > INT_MAX ? INT_MAX : (int)left) < 0 && errno != EINTR) {
            failed = errno;
            break;
        }
        drain_wakeups();
        capture_read(&cap[0]);
        capture_read(&cap[1]);
    }
    /* The command exited (still a zombie, so its group id cannot be reused) or ran out of time. */
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
    }
    running_group = 0;
    for (int i = 0; i < 2; i++) {
        capture_read(&cap[i]); /* what it wrote before it ended; a process that left the group may hold the pipe */
        if (cap[i].fd >= 0) close(cap[i].fd);
    }
    *exec_err = 0;
    if (read(report[0], exec_err, sizeof *exec_err) != sizeof *exec_err) *exec_err = 0;
    close(report[0]);
    return failed;
}

/*
 * run MS SHELL COMMAND [USER]: a command of the machine's own, run as it
 * would run there (trusting the machine's tools by design; the check that
 * sends it says so). Output: exit code (128+n when killed by signal n),
 * signal, whether MS ran out, the byte counts, a blank line, then the kept
 * stdout and stderr bytes.
 */
static int verb_run(int n, char **a, struct sbuf *out) {
    unsigned long ms;
    if (parse_num(a[0], MS_MAX, &ms) < 0) return reply(out, ST_ERR, "bad MS: %s", a[0]);
    char *sh_argv[] = {a[1], "-c", a[2], NULL};
    char *su_argv[] = {"/bin/su", "-s", a[1], n == 4 ? a[3] : NULL, "-c", a[2], NULL};
    char *const *argv = n == 4 ? su_argv : sh_argv;
    struct capture cap[2];
    int status = 0, timed_out = 0, exec_err = 0;
    sb_init(&cap[0].kept, RUN_KEEP), sb_init(&cap[1].kept, RUN_KEEP);
    struct bound t = bound_ms((long)ms);
    int e = run_command(argv, t, cap, &status, &timed_out, &exec_err);
    int rc = ST_OK;
    if (e || exec_err)
        rc = reply(out, ST_ERR, "cannot run %s: %s", argv[0], strerror(e ? e : exec_err));
    else if (timed_out && t.by_deadline)
        rc = ST_DEADLINE;
    if (rc == ST_OK) {
        int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
        out->limit = 2 * RUN_KEEP + 256;
        sb_printf(out, "exit=%d\nsignal=%d\ntimed_out=%d\nstdout=%zu\nstderr=%zu\n\n", sig ? 128 + sig : WEXITSTATUS(status), sig,
                  timed_out, cap[0].kept.len, cap[1].kept.len);
        sb_add(out, cap[0].kept.p, cap[0].kept.len);
        sb_add(out, cap[1].kept.p, cap[1].kept.len);
        if (cap[0].kept.cut || cap[1].kept.cut || cap[0].kept.oom || cap[1].kept.oom) rc = ST_PART;
    }
    free(cap[0].kept.p), free(cap[1].kept.p);
    return rc;
}

/* ---------- serve: the protocol ---------- */

#define INPUT_MAX (1UL << 20)
#define LINE_BYTES_MAX 65536UL
#define ARGS_MAX 16
#define ID_MAX 999999999UL
#define HEADER_WAIT_MS 10000 /* for the header line, before it names the deadline */
#define WATCHDOG_GRACE_MS 25 /* the main thread's own bounded waits end at the deadline: let it answer first */

typedef int verb_fn(int n, char **args, struct sbuf *out);
static const struct verb {
    const char *name;
    int min, max;
    verb_fn *fn;
    int network; /* waits on the network: answered beside the others (see NET_WORKERS) */
} VERBS[] = {
    {"lstat", 1, 1, verb_lstat, 0},     {"read", 2, 2, verb_read, 0},       {"list", 1, 1, verb_list, 0},
    {"statfs", 1, 1, verb_statfs, 0},   {"xattr", 2, 2, verb_xattr, 0},     {"procs", 0, 0, verb_procs, 0},
    {"cgroup", 1, 1, verb_cgroup, 0},
    {"connect", 3, 3, verb_connect, 1}, {"ping", 2, 2, verb_ping, 1},       {"dns", 3, 4, verb_dns, 1},
    {"resolve", 2, 2, verb_resolve, 1}, {"http", 6, 6, verb_http, 1},       {"run", 3, 4, verb_run, 0},
};

struct request {
    unsigned long id, line;
    size_t off; /* the line in the input; its LF becomes a NUL */
};

/*
 * Records are written under out_lock, by the main thread, the network
 * workers or, past the deadline, the watchdog; each request's exactly once
 * (written[i]), in whatever order they are done.
 */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct request *requests;
static size_t request_count;
static unsigned char *written;
static char *g_input;

/*
 * Requests that wait on the network (a server that does not answer waits
 * out its MS) are answered side by side by up to NET_WORKERS threads, so a
 * run lasts as long as its slowest wait, not the sum of them; the others
 * are answered in order by the main thread meanwhile.
 */
#define NET_WORKERS 16
static size_t *net_requests, net_count;
static unsigned char *on_network; /* per request, decided before any line is split */
static _Atomic size_t net_next;

static void write_record(unsigned long id, const char *status, const char *payload, size_t len) {
    printf("%lu\t%s\t%zu\n", id, status, len);
    if (len) fwrite(payload, 1, len, stdout);
    putchar('\n');
    if (fflush(stdout) != 0) _exit(3); /* nobody is reading any more */
}

/* The input is not valid: the single record 0 says what and where, then exit 2. */
__attribute__((noreturn, format(printf, 2, 3))) static void reject(unsigned long line, const char *fmt, ...) {
    char msg[512];
    int at = line ? snprintf(msg, sizeof msg, "line %lu: ", line) : 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + at, sizeof msg - (size_t)at, fmt, ap);
    va_end(ap);
    write_record(0, "err", msg, strlen(msg));
    exit(2);
}

static unsigned long line_at(const char *buf, size_t off) {
    unsigned long line = 1;
    for (size_t i = 0; i < off; i++) line += buf[i] == '\n';
    return line;
}

/* `examlab-probe 1 DEADLINE_MS`: the deadline, or 0 when the line is not that. */
static unsigned long parse_header(const char *line, size_t len) {
    static const char prefix[] = "examlab-probe 1 ";
    size_t plen = sizeof prefix - 1;
    char num[16];
    unsigned long ms;
    if (len <= plen || len - plen >= sizeof num || memcmp(line, prefix, plen)) return 0;
    memcpy(num, line + plen, len - plen);
    num[len - plen] = 0;
    return parse_num(num, ID_MAX, &ms) == 0 ? ms : 0;
}

/*
 * Reads all of stdin (one byte past INPUT_MAX tells it is too large). The
 * header line must come within HEADER_WAIT_MS; once it has named the deadline,
 * the rest of the input must have come before that.
 */
static size_t read_input(char *buf, long start) {
    size_t len = 0;
    long end = start + HEADER_WAIT_MS;
    int have_header = 0;
    for (;;) {
        const char *lf = have_header ? NULL : memchr(buf, '\n', len);
        if (lf) {
            unsigned long ms = parse_header(buf, (size_t)(lf - buf));
            if (!ms) reject(1, "not a header `examlab-probe 1 DEADLINE_MS`");
            g_deadline = end = start + (long)ms;
            have_header = 1;
        } else if (!have_header && len > LINE_BYTES_MAX) {
            reject(1, "the line is longer than %lu bytes", LINE_BYTES_MAX);
        }
        if (len > INPUT_MAX) reject(line_at(buf, INPUT_MAX), "the input is larger than %lu bytes", INPUT_MAX);
        int w = wait_fd(0, POLLIN, end);
        if (w == 0 && have_header) reject(line_at(buf, len), "the input did not end before the deadline");
        if (w == 0) reject(1, "no header within %d ms", HEADER_WAIT_MS);
        ssize_t r = read(0, buf + len, INPUT_MAX + 1 - len);
        if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (r < 0) reject(line_at(buf, len), "cannot read the input: %s", strerror(errno));
        if (r == 0) return len;
        len += (size_t)r;
    }
}

/* A request id: 1..ID_MAX in plain decimal (no sign, no leading zero), or 0. */
static unsigned long parse_id(const char *s, size_t n) {
    unsigned long id = 0;
    if (n == 0 || n > 9 || s[0] == '0') return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        id = id * 10 + (unsigned long)(s[i] - '0');
    }
    return id;
}

/* Checks every line before any work is done, and indexes the requests. */
static void parse_requests(char *buf, size_t len) {
    size_t lines = 0, slots = 16;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    while (slots < 2 * lines) slots *= 2;
    struct request *seen = calloc(slots, sizeof *seen); /* ids seen, open addressing */
    requests = malloc((lines + 1) * sizeof *requests);
    if (!seen || !requests) reject(0, "out of memory");
    if (len == 0) reject(1, "no header");
    unsigned long line = 0;
    for (size_t pos = 0; pos < len;) {
        char *p = buf + pos, *lf = memchr(p, '\n', len - pos);
        size_t n = lf ? (size_t)(lf - p) : len - pos;
        line++;
        if (!lf) reject(line, "the line does not end with LF");
        if (n > LINE_BYTES_MAX) reject(line, "the line is longer than %lu bytes", LINE_BYTES_MAX);
        if (memchr(p, 0, n)) reject(line, "NUL byte");
        pos += n + 1;
        *lf = 0;
        if (line == 1) continue; /* the header, checked as it came in */
        char *tab = strchr(p, '\t');
        unsigned long id = parse_id(p, tab ? (size_t)(tab - p) : n);
        if (!id) reject(line, "the id is not a number from 1 to %lu", ID_MAX);
        if (!tab || tab[1] == '\t' || tab[1] == 0) reject(line, "no verb");
        int tabs = 0;
        for (char *c = tab + 1; *c; c++) tabs += *c == '\t';
        if (tabs > ARGS_MAX) reject(line, "more than %d arguments", ARGS_MAX);
        size_t h = (id * 2654435761UL) & (slots - 1);
        for (; seen[h].id; h = (h + 1) & (slots - 1))
            if (seen[h].id == id) reject(line, "duplicate id %lu (first on line %lu)", id, seen[h].line);
        seen[h] = (struct request){id, line, 0};
        requests[request_count++] = (struct request){id, line, (size_t)(p - buf)};
    }
    free(seen);
}

/* Splits one request line in place and answers it into out. */
static int answer(char *line, struct sbuf *out) {
    char *field[2 + ARGS_MAX];
    int n = 0;
    for (char *c = line;;) {
        char *tab = strchr(c, '\t');
        field[n++] = c;
        if (!tab) break;
        *tab = 0;
        c = tab + 1;
    }
    sb_clear(out);
    out->limit = 65536;
    out->oom = 0;
    if (now_ms() >= g_deadline) return ST_DEADLINE;
    const struct verb *v = NULL;
    for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++)
        if (!strcmp(VERBS[i].name, field[1])) v = &VERBS[i];
    if (!v) return reply(out, ST_ERR, "unknown verb: %s", field[1]);
    if (n - 2 < v->min || n - 2 > v->max) {
        if (v->min == v->max) return reply(out, ST_ERR, "%s takes %d argument%s, not %d", v->name, v->min, v->min == 1 ? "" : "s", n - 2);
        return reply(out, ST_ERR, "%s takes %d to %d arguments, not %d", v->name, v->min, v->max, n - 2);
    }
    int rc = v->fn(n - 2, field + 2, out);
    if (out->oom) rc = reply(out, ST_ERR, "out of memory");
    return rc;
}

/* The verb of a request line (id TAB verb ...) waits on the network (its `network` in VERBS). */
static int waits_on_network(const char *line) {
    const char *verb = strchr(line, '\t');
    if (!verb) return 0;
    verb++;
    size_t n = strcspn(verb, "\t");
    for (size_t i = 0; i < sizeof VERBS / sizeof VERBS[0]; i++)
        if (strlen(VERBS[i].name) == n && !memcmp(VERBS[i].name, verb, n)) return VERBS[i].network;
    return 0;
}

/* Answers request i and writes its record. */
static void answer_request(size_t i, struct sbuf *out) {
    int rc = answer(g_input + requests[i].off, out);
    pthread_mutex_lock(&out_lock);
    if (!written[i]) {
        if (rc == ST_DEADLINE)
            write_record(requests[i].id, "err", "deadline", 8);
        else
            write_record(requests[i].id, STATUS_NAMES[rc], out->p, out->len);
        written[i] = 1;
    }
    pthread_mutex_unlock(&out_lock);
}

static void *net_worker(void *unused) {
    (void)unused;
    struct sbuf out;
    sb_init(&out, 0);
    for (size_t k; (k = atomic_fetch_add(&net_next, 1)) < net_count;) answer_request(net_requests[k], &out);
    return NULL;
}

/* Past the deadline (a system call hung on a stuck mount, say): the remaining records, then exit. */
static void *watchdog(void *unused) {
    (void)unused;
    long at = g_deadline + WATCHDOG_GRACE_MS;
    struct timespec ts = {.tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000L};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
    pthread_mutex_lock(&out_lock);
    pid_t group = running_group;
    if (group > 0) kill(-group, SIGKILL);
    for (size_t i = 0; i < request_count; i++)
        if (!written[i]) write_record(requests[i].id, "err", "deadline", 8);
    printf("end\t%zu\n", request_count);
    fflush(stdout);
    _exit(0);
}

static int serve(long start) {
    char *input = malloc(INPUT_MAX + 1);
    if (!input) reject(0, "out of memory");
    size_t len = read_input(input, start);
    parse_requests(input, len);
    g_input = input;
    written = calloc(request_count + 1, 1);
    on_network = calloc(request_count + 1, 1);
    net_requests = malloc((request_count + 1) * sizeof *net_requests);
    if (!written || !on_network || !net_requests) reject(0, "out of memory");
    for (size_t i = 0; i < request_count; i++)
        if ((on_network[i] = (unsigned char)waits_on_network(input + requests[i].off))) net_requests[net_count++] = i;

    struct sigaction sa = {.sa_handler = on_sigchld, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
    sigemptyset(&sa.sa_mask);
    if (pipe2(sigchld_pipe, O_CLOEXEC | O_NONBLOCK) == 0) sigaction(SIGCHLD, &sa, NULL);
    sigset_t all, old;
    pthread_t tid;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the watchdog takes no signal */
    pthread_create(&tid, NULL, watchdog, NULL);
    /* The workers take no signal either: SIGCHLD is for the main thread's `run`. */
    pthread_t workers[NET_WORKERS];
    size_t started = 0;
    for (; started < NET_WORKERS && started < net_count; started++)
        if (pthread_create(&workers[started], NULL, net_worker, NULL) != 0) break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);

    struct sbuf out;
    sb_init(&out, 0);
    for (size_t i = 0; i < request_count; i++)
        if (!on_network[i]) answer_request(i, &out);
    net_worker(NULL); /* with the workers, or alone if none could start */
    for (size_t w = 0; w < started; w++) pthread_join(workers[w], NULL);
    pthread_mutex_lock(&out_lock); /* kept until exit: the watchdog writes nothing after the end line */
    printf("end\t%zu\n", request_count);
    fflush(stdout);
    _exit(0);
}

/* Writes the whole buffer, across short writes and interruptions. */
static int write_all(int fd, const char *buf, size_t len) {
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Copies between stdin/stdout and a TCP connection to 127.0.0.1:PORT until both directions end. */
static int relay(const char *port_text) {
    char *end;
    long port = strtol(port_text, &end, 10);
    if (*end || port < 1 || port > 65535) {
        fprintf(stderr, "relay: not a port: %s\n", port_text);
        return 2;
    }
    int sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (sock < 0 || connect(sock, (struct sockaddr *)&to, sizeof to) < 0) {
        fprintf(stderr, "relay: cannot connect to 127.0.0.1:%ld: %s\n", port, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
    int open_in = 1, open_sock = 1;
    char buf[1 << 16];
    while (open_sock) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            return 1;
        }
        if (open_in && fds[0].revents) {
            ssize_t n = read(0, buf, sizeof buf);
            if (n <= 0) {
                open_in = 0;
                fds[0].fd = -1;
                shutdown(sock, SHUT_WR);
            } else if (write_all(sock, buf, (size_t)n) < 0) return 1;
        }
        if (fds[1].revents) {
            ssize_t n = read(sock, buf, sizeof buf);
            if (n <= 0) open_sock = 0;
            else if (write_all(1, buf, (size_t)n) < 0) return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "relay")) return relay(argv[2]);
    if (argc >= 2 && !strcmp(argv[1], "serve")) {
        /* Not dumpable: a root of the machine without CAP_SYS_PTRACE can neither trace the probe nor open its /proc files. */
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        long start = now_ms();
        signal(SIGPIPE, SIG_IGN);
        setvbuf(stdout, NULL, _IOFBF, 1 << 16);
        if (argc != 2) reject(0, "serve takes no arguments");
        return serve(start);
    }
    fprintf(stderr, "usage: examlab-probe serve (the work on stdin; see the head of examlab-probe.c)\n");
    return 2;
}
