/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <glib.h>
#include <stdio.h>

#include "electiond-util.h"

static int log_max_level = LOG_INFO;

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        int saved_errno = errno;
        va_list ap;

        error = abs(error);
        if (level > log_max_level)
                return -error;

        char buf[2048];
        va_start(ap, fmt);
        if (error != 0)
                errno = error; /* so that %m in fmt refers to the error */
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);

        if (log_max_level >= LOG_DEBUG)
                fprintf(stderr, "<%d>%s (%s:%d)\n", level, buf, file, line);
        else
                fprintf(stderr, "<%d>%s\n", level, buf);

        errno = saved_errno;
        return -error;
}

bool election_string_valid(const char *s) {
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n < 1 || n > 255)
                return false;
        if (!g_utf8_validate(s, (gssize) n, NULL))
                return false;
        for (const char *p = s; *p; p = g_utf8_next_char(p)) {
                gunichar c = g_utf8_get_char(p);
                if (g_unichar_iscntrl(c))
                        return false;
        }
        return true;
}
