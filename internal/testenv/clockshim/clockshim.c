/*
 * clockshim: shifts the wall clock of one process, for tests only.
 *
 * Loaded with LD_PRELOAD into a private redis-server started by
 * internal/testenv (FakeClock), it adds an offset to CLOCK_REALTIME as seen
 * through clock_gettime, gettimeofday and time. The offset, in nanoseconds
 * (a decimal integer, may be negative), is read from the file named by
 * AZEN_CLOCKSHIM_FILE, again whenever 10 ms of monotonic time have passed,
 * so a test can move the process's clock while it runs. The monotonic
 * clocks are left alone.
 *
 * Why not libfaketime: Debian's redis-server is linked with jemalloc,
 * whose initialisation calls clock_gettime before libfaketime has resolved
 * the real one, and libfaketime gives up ("Unexpected recursive calls to
 * clock_gettime()", libfaketime issue 130). This shim calls the kernel
 * directly (syscall), never dlsym or malloc, so it cannot recurse.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long offset_ns;	/* accessed with __atomic builtins */
static long long read_at_ns;	/* monotonic time of the last read, 0: never */

static long long mono_ns(void)
{
	struct timespec ts;
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* refresh rereads the offset file at most every 10 ms. */
static void refresh(void)
{
	long long now = mono_ns();
	long long last = __atomic_load_n(&read_at_ns, __ATOMIC_RELAXED);
	if (last != 0 && now - last < 10000000LL)
		return;
	__atomic_store_n(&read_at_ns, now, __ATOMIC_RELAXED);
	const char *path = getenv("AZEN_CLOCKSHIM_FILE");
	if (path == NULL)
		return;
	int fd = (int)syscall(SYS_open, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[32];
	long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	/* Parsed by hand: strtoll may touch the locale. */
	long long v = 0;
	int i = 0, neg = 0;
	if (buf[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (buf[i] < '0' || buf[i] > '9')
		return; /* half written: keep the last offset */
	for (; buf[i] >= '0' && buf[i] <= '9'; i++)
		v = v * 10 + (buf[i] - '0');
	__atomic_store_n(&offset_ns, neg ? -v : v, __ATOMIC_RELAXED);
}

static void shift(struct timespec *ts)
{
	refresh();
	long long t = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec +
		      __atomic_load_n(&offset_ns, __ATOMIC_RELAXED);
	ts->tv_sec = t / 1000000000LL;
	ts->tv_nsec = t % 1000000000LL;
	if (ts->tv_nsec < 0) {
		ts->tv_sec--;
		ts->tv_nsec += 1000000000LL;
	}
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int r = (int)syscall(SYS_clock_gettime, id, ts);
	if (r == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		shift(ts);
	return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	(void)tz;
	struct timespec ts;
	int r = clock_gettime(CLOCK_REALTIME, &ts);
	if (r == 0) { /* glibc declares tv nonnull */
		tv->tv_sec = ts.tv_sec;
		tv->tv_usec = ts.tv_nsec / 1000;
	}
	return r;
}

time_t time(time_t *out)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (out != NULL)
		*out = ts.tv_sec;
	return ts.tv_sec;
}
