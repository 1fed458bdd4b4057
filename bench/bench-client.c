/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Load client for bench/bench-core.py. One process, one sd-event loop, N bus connections; each
 * connection keeps exactly one call in flight, issuing Enter/Leave pairs of its own id back to back,
 * and every call's latency (send to reply) is recorded. Prints one JSON line with the figures.
 *
 *   bench-client --address ADDR [--clients N] [--seconds S] [--warmup S] [--election NAME] [--trace FILE]
 *   bench-client --address ADDR --populate N [--window W]   (N elections, one persistent candidate each)
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <time.h>

#define BUS_NAME "org.electiond.Election1"
#define ELECTION_PREFIX "/org/electiond/Election1/election"
#define ELECTION_IFACE "org.electiond.Election1.Election"

typedef struct Bench Bench;

typedef struct Conn {
        Bench *bench;
        sd_bus *bus;
        char id[32];
        unsigned step;          /* even: Enter next, odd: Leave next */
        uint64_t sent_usec;
} Conn;

struct Bench {
        sd_event *event;
        const char *address;
        const char *election;
        char *path;
        unsigned n_clients;
        double seconds, warmup;
        uint64_t start_usec, measure_usec, end_usec;
        unsigned in_flight;
        Conn *conns;
        uint64_t *lat;          /* per measured call, usec */
        FILE *trace;            /* --trace: one line per measured call, "sent_usec latency_usec" */
        size_t n_lat, lat_cap;
        uint64_t n_errors;
        char first_error[256];
        /* populate mode */
        unsigned populate, window, next, done;
        sd_bus *pbus;
};

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int open_bus(const char *address, sd_event *event, sd_bus **ret) {
        sd_bus *bus = NULL;
        int r;

        r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, true);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

static void record_error(Bench *b, const sd_bus_error *e) {
        if (b->n_errors++ == 0)
                snprintf(b->first_error, sizeof b->first_error, "%s: %s",
                         e && e->name ? e->name : "?", e && e->message ? e->message : "");
}

static int issue(Conn *c);

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Conn *c = userdata;
        Bench *b = c->bench;
        uint64_t now = now_usec();

        b->in_flight--;
        if (sd_bus_message_is_method_error(m, NULL))
                record_error(b, sd_bus_message_get_error(m));
        else if (c->sent_usec >= b->measure_usec && now <= b->end_usec) {
                if (b->n_lat == b->lat_cap) {
                        size_t cap = b->lat_cap ? b->lat_cap * 2 : 65536;
                        uint64_t *n = realloc(b->lat, cap * sizeof *n);
                        if (!n)
                                return sd_event_exit(b->event, -ENOMEM);
                        b->lat = n;
                        b->lat_cap = cap;
                }
                b->lat[b->n_lat++] = now - c->sent_usec;
                if (b->trace)
                        fprintf(b->trace, "%" PRIu64 " %" PRIu64 "\n", c->sent_usec - b->measure_usec, now - c->sent_usec);
        }
        c->step++;

        /* Stop issuing after the window, but finish with a Leave so nothing stays behind. */
        if (now > b->end_usec && c->step % 2 == 0) {
                if (b->in_flight == 0)
                        sd_event_exit(b->event, 0);
                return 0;
        }
        return issue(c);
}

static int issue(Conn *c) {
        Bench *b = c->bench;
        int r;

        c->sent_usec = now_usec();
        if (c->step % 2 == 0)
                r = sd_bus_call_method_async(c->bus, NULL, BUS_NAME, b->path, ELECTION_IFACE, "Enter",
                                             on_reply, c, "st", c->id, UINT64_C(0));
        else
                r = sd_bus_call_method_async(c->bus, NULL, BUS_NAME, b->path, ELECTION_IFACE, "Leave",
                                             on_reply, c, "s", c->id);
        if (r < 0)
                return sd_event_exit(b->event, r);
        b->in_flight++;
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *v, size_t n, double p) {
        if (n == 0)
                return 0;
        size_t i = (size_t) (p * (double) (n - 1) + 0.5);
        return v[i];
}

static int run_load(Bench *b) {
        int r;

        b->conns = calloc(b->n_clients, sizeof *b->conns);
        if (!b->conns)
                return -ENOMEM;
        for (unsigned i = 0; i < b->n_clients; i++) {
                Conn *c = &b->conns[i];
                c->bench = b;
                snprintf(c->id, sizeof c->id, "bench-%u", i);
                r = open_bus(b->address, b->event, &c->bus);
                if (r < 0) {
                        fprintf(stderr, "bench-client: connect: %s\n", strerror(-r));
                        return r;
                }
        }
        b->start_usec = now_usec();
        b->measure_usec = b->start_usec + (uint64_t) (b->warmup * 1e6);
        b->end_usec = b->measure_usec + (uint64_t) (b->seconds * 1e6);
        for (unsigned i = 0; i < b->n_clients; i++) {
                r = issue(&b->conns[i]);
                if (r < 0)
                        return r;
        }
        r = sd_event_loop(b->event);
        if (r < 0) {
                fprintf(stderr, "bench-client: event loop: %s\n", strerror(-r));
                return r;
        }

        qsort(b->lat, b->n_lat, sizeof *b->lat, cmp_u64);
        printf("{\"clients\": %u, \"seconds\": %.3f, \"calls\": %zu, \"ops_per_sec\": %.1f, "
               "\"p50_usec\": %" PRIu64 ", \"p99_usec\": %" PRIu64 ", \"max_usec\": %" PRIu64 ", "
               "\"errors\": %" PRIu64 ", \"first_error\": \"%s\"}\n",
               b->n_clients, b->seconds, b->n_lat, (double) b->n_lat / b->seconds,
               percentile(b->lat, b->n_lat, 0.50), percentile(b->lat, b->n_lat, 0.99),
               b->n_lat ? b->lat[b->n_lat - 1] : 0, b->n_errors, b->first_error);

        for (unsigned i = 0; i < b->n_clients; i++)
                sd_bus_flush_close_unref(b->conns[i].bus);
        free(b->conns);
        return b->n_errors > 0 ? -EIO : 0;
}

static int populate_next(Bench *b);

static int on_populated(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Bench *b = userdata;

        b->in_flight--;
        b->done++;
        if (sd_bus_message_is_method_error(m, NULL))
                record_error(b, sd_bus_message_get_error(m));
        if (b->done == b->populate)
                return sd_event_exit(b->event, 0);
        return populate_next(b);
}

static int populate_next(Bench *b) {
        while (b->next < b->populate && b->in_flight < b->window) {
                char name[64];
                char *path = NULL;
                int r;

                snprintf(name, sizeof name, "bench-pop-%u", b->next++);
                r = sd_bus_path_encode(ELECTION_PREFIX, name, &path);
                if (r < 0)
                        return sd_event_exit(b->event, r);
                r = sd_bus_call_method_async(b->pbus, NULL, BUS_NAME, path, ELECTION_IFACE, "Enter",
                                             on_populated, b, "st", "pop", UINT64_C(1));
                free(path);
                if (r < 0)
                        return sd_event_exit(b->event, r);
                b->in_flight++;
        }
        return 0;
}

static int run_populate(Bench *b) {
        int r;

        r = open_bus(b->address, b->event, &b->pbus);
        if (r < 0) {
                fprintf(stderr, "bench-client: connect: %s\n", strerror(-r));
                return r;
        }
        uint64_t t0 = now_usec();
        r = populate_next(b);
        if (r >= 0)
                r = sd_event_loop(b->event);
        if (r < 0) {
                fprintf(stderr, "bench-client: populate: %s\n", strerror(-r));
                return r;
        }
        printf("{\"populated\": %u, \"seconds\": %.3f, \"errors\": %" PRIu64 ", \"first_error\": \"%s\"}\n",
               b->done, (double) (now_usec() - t0) / 1e6, b->n_errors, b->first_error);
        sd_bus_flush_close_unref(b->pbus);
        return b->n_errors > 0 ? -EIO : 0;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "address",  required_argument, NULL, 'a' },
                { "clients",  required_argument, NULL, 'c' },
                { "seconds",  required_argument, NULL, 's' },
                { "warmup",   required_argument, NULL, 'w' },
                { "election", required_argument, NULL, 'e' },
                { "populate", required_argument, NULL, 'p' },
                { "window",   required_argument, NULL, 'W' },
                { "trace",    required_argument, NULL, 't' },
                {}
        };
        Bench b = {
                .address = getenv("DBUS_SYSTEM_BUS_ADDRESS"),
                .election = "bench",
                .n_clients = 1,
                .seconds = 3,
                .warmup = 0.5,
                .window = 64,
        };
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'a': b.address = optarg; break;
                case 'c': b.n_clients = (unsigned) strtoul(optarg, NULL, 10); break;
                case 's': b.seconds = strtod(optarg, NULL); break;
                case 'w': b.warmup = strtod(optarg, NULL); break;
                case 'e': b.election = optarg; break;
                case 'p': b.populate = (unsigned) strtoul(optarg, NULL, 10); break;
                case 'W': b.window = (unsigned) strtoul(optarg, NULL, 10); break;
                case 't':
                        b.trace = fopen(optarg, "we");
                        if (!b.trace) {
                                fprintf(stderr, "bench-client: %s: %s\n", optarg, strerror(errno));
                                return 1;
                        }
                        break;
                default: return 2;
                }
        if (!b.address || b.n_clients == 0 || b.seconds <= 0 || b.window == 0) {
                fprintf(stderr, "usage: bench-client --address ADDR [--clients N] [--seconds S] [--warmup S] "
                                "[--election NAME] [--trace FILE] | --populate N [--window W]\n");
                return 2;
        }

        r = sd_event_new(&b.event);
        if (r < 0)
                return 1;
        r = sd_bus_path_encode(ELECTION_PREFIX, b.election, &b.path);
        if (r < 0)
                return 1;

        r = b.populate > 0 ? run_populate(&b) : run_load(&b);
        if (b.n_errors > 0)
                fprintf(stderr, "bench-client: %" PRIu64 " failed calls, first: %s\n", b.n_errors, b.first_error);

        if (b.trace)
                fclose(b.trace);
        free(b.lat);
        free(b.path);
        sd_event_unref(b.event);
        return r < 0 ? 1 : 0;
}
