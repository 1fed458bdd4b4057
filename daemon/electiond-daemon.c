/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <systemd/sd-daemon.h>

#include "electiond-bus.h"
#include "electiond-daemon.h"
#include "electiond-units.h"
#include "electiond-util.h"

struct Daemon {
        Manager *manager;
        Units *units;            /* leadership-driven systemd units (elections.d) */
        BusEdge *edge;           /* from the time serving starts */
        sd_bus_slot *name_slot;
        bool user_bus;
        ManagerObserver observer;
};

/* Another witness instance on this machine (one per cluster, electiond-witness@.service) owns
 * the bus name: a witness needs no callers, so it votes on without the name (its objects stay
 * reachable under its unique name) and reports ready. */
static void witness_without_name(Daemon *d) {
        const char *unique = NULL;

        (void) sd_bus_get_unique_name(manager_get_bus(d->manager), &unique);
        log_notice("Bus name %s is owned by another process (another witness instance?): this witness serves "
                   "only as %s and keeps voting.", ELECTIOND_BUS_NAME, unique ?: "?");
        manager_set_serving(d->manager);
}

static int on_name_acquired(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Daemon *d = userdata;
        Manager *m = d->manager;
        const sd_bus_error *e;
        uint32_t code;
        int r;

        d->name_slot = sd_bus_slot_unref(d->name_slot);

        e = sd_bus_message_get_error(reply);
        if (e) {
                r = sd_bus_error_get_errno(e);
                log_error_errno(r, "Failed to acquire bus name %s: %s", ELECTIOND_BUS_NAME, e->message ?: e->name);
                return sd_event_exit(manager_get_event(m), EXIT_FAILURE);
        }
        r = sd_bus_message_read(reply, "u", &code);
        if (r < 0) {
                log_error_errno(r, "Failed to parse RequestName reply: %m");
                return sd_event_exit(manager_get_event(m), EXIT_FAILURE);
        }
        if (code != 1 && code != 4 && manager_get_config(m)->witness) { /* DBUS_REQUEST_NAME_REPLY_{PRIMARY,ALREADY}_OWNER */
                witness_without_name(d);
                return 0;
        }
        if (code != 1 && code != 4) {
                log_error("Bus name %s is already owned by another process.", ELECTIOND_BUS_NAME);
                return sd_event_exit(manager_get_event(m), EXIT_FAILURE);
        }

        log_info("Serving %s on the %s bus as node '%s' (%u elections).", ELECTIOND_BUS_NAME,
                 d->user_bus ? "session" : "system", manager_node_name(m), election_state_count(manager_get_state(m)));
        manager_set_serving(m);
        return 0;
}

static int start_serving(Daemon *d) {
        sd_bus *bus = manager_get_bus(d->manager);
        int r;

        r = bus_edge_new(d->manager, bus, &d->edge);
        if (r < 0)
                return log_error_errno(r, "Failed to register bus objects: %m");

        r = sd_bus_request_name_async(bus, &d->name_slot, ELECTIOND_BUS_NAME, 0, on_name_acquired, d);
        if (r < 0)
                return log_error_errno(r, "Failed to request bus name %s: %m", ELECTIOND_BUS_NAME);
        return 0;
}

static void start_units(Daemon *d) {
        int r;

        r = units_start(d->units);
        if (r < 0)
                log_warning_errno(r, "Failed to start driving leader units, continuing without: %m");
}

static int observe_serve(void *userdata, bool drive_units) {
        Daemon *d = userdata;
        int r;

        r = start_serving(d);
        if (r < 0)
                return r;
        if (drive_units)
                start_units(d);
        return 0;
}

/* Observed before the bus edge and the units (MANAGER_OBSERVER_ORDER_DAEMON). */
static void observe_status_changed(void *userdata) {
        Daemon *d = userdata;

        /* leader units are driven from the first time this node holds a lease */
        if (d->edge && !manager_shutting_down(d->manager) && manager_quorate(d->manager))
                start_units(d);
}

int daemon_new(const ManagerOptions *opts, Daemon **ret) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        const Config *c;
        int r;

        g_assert(opts);
        g_assert(ret);

        d = g_new0(Daemon, 1);
        d->user_bus = opts->user_bus;

        r = manager_new(opts, &d->manager);
        if (r < 0)
                return r;
        d->observer = (ManagerObserver) {
                .order = MANAGER_OBSERVER_ORDER_DAEMON,
                .userdata = d,
                .status_changed = observe_status_changed,
                .serve = observe_serve,
        };
        manager_add_observer(d->manager, &d->observer);

        c = manager_get_config(d->manager);
        r = units_new(d->manager, c->elections_dir, c->runtime_dir, &d->units);
        if (r < 0)
                return log_error_errno(r, "Failed to load elections from %s: %m", c->elections_dir);

        r = manager_setup_engine(d->manager, opts);
        if (r < 0)
                return r;

        *ret = g_steal_pointer(&d);
        return 0;
}

int daemon_run(Daemon *d) {
        int r;

        g_assert(d);

        r = manager_start(d->manager);
        if (r < 0)
                return r;

        r = sd_event_loop(manager_get_event(d->manager));
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");

        (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down");
        log_info("Exiting (status %d).", r);
        return r;
}

Daemon *daemon_free(Daemon *d) {
        if (!d)
                return NULL;

        /* Answer every caller still waiting, while the bus edge can still reply. */
        manager_begin_shutdown(d->manager);
        /* Stops leader units, so it must go while the bus is still open. */
        d->units = units_free(d->units);
        d->edge = bus_edge_free(d->edge);
        d->name_slot = sd_bus_slot_unref(d->name_slot);
        manager_remove_observer(d->manager, &d->observer);
        /* then the cluster, the engine, the bus and the state */
        d->manager = manager_free(d->manager);
        g_free(d);
        return NULL;
}
