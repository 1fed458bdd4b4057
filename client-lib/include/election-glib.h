/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Letting a GLib main loop drive libelection.
 *
 * libelection runs on sd-event. A GLib program creates an sd_event, attaches the client to it and
 * adds the GSource below to its GMainContext: the source polls sd_event_get_fd() (an epoll fd that
 * becomes readable when any sd-event source — bus socket, timers — is ready) and runs one sd-event
 * iteration whenever it is. Everything is header-only (static inline), so libelection itself does
 * not depend on GLib; the program links glib-2.0 as usual.
 *
 *     sd_event *event = NULL;
 *     sd_event_new(&event);
 *     election_client_attach_event(client, event, 0);
 *     GSource *s = election_glib_source_new(event);
 *     g_source_attach(s, NULL);
 *     ... g_main_loop_run(loop); ...
 *     g_source_destroy(s); g_source_unref(s);
 *
 * Calling sd_event_loop()/sd_event_run() on the same event while the source is attached is not
 * allowed. The source keeps a reference on the sd_event. */

#include <glib.h>
#include <systemd/sd-event.h>

typedef struct ElectionGlibSource {
        GSource source;
        sd_event *event;
        gpointer tag;
} ElectionGlibSource;

static inline gboolean election_glib_source_prepare(GSource *source, gint *timeout) {
        ElectionGlibSource *s = (ElectionGlibSource *) source;

        /* sd-event keeps its own timers inside the epoll fd, so GLib needs no timeout of its own. */
        *timeout = -1;
        return sd_event_prepare(s->event) > 0;
}

static inline gboolean election_glib_source_check(GSource *source) {
        ElectionGlibSource *s = (ElectionGlibSource *) source;

        if (sd_event_get_state(s->event) == SD_EVENT_PENDING)
                return TRUE;
        return sd_event_wait(s->event, 0) > 0;
}

static inline gboolean election_glib_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data) {
        ElectionGlibSource *s = (ElectionGlibSource *) source;

        (void) callback;
        (void) user_data;
        /* Keep going even if a handler failed; the loop itself decides when to stop. */
        (void) sd_event_dispatch(s->event);
        return G_SOURCE_CONTINUE;
}

static inline void election_glib_source_finalize(GSource *source) {
        ElectionGlibSource *s = (ElectionGlibSource *) source;

        s->event = sd_event_unref(s->event);
}

/* A new (unattached) GSource that drives EVENT; NULL on failure. */
static inline GSource *election_glib_source_new(sd_event *event) {
        static GSourceFuncs funcs = {
                .prepare = election_glib_source_prepare,
                .check = election_glib_source_check,
                .dispatch = election_glib_source_dispatch,
                .finalize = election_glib_source_finalize,
        };
        ElectionGlibSource *s;
        int fd;

        fd = sd_event_get_fd(event);
        if (fd < 0)
                return NULL;
        s = (ElectionGlibSource *) g_source_new(&funcs, sizeof(ElectionGlibSource));
        s->event = sd_event_ref(event);
        s->tag = g_source_add_unix_fd(&s->source, fd, G_IO_IN);
        g_source_set_name(&s->source, "libelection sd-event");
        return &s->source;
}
