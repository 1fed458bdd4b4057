/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <getopt.h>
#include <glib.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>

#include "electiond-daemon.h"
#include "electiond-main.h"
#include "electiond-util.h"

#define EXIT_USAGE 2

static const struct {
        const char *name;
        int level;
} log_levels[] = {
        { "err",     LOG_ERR },
        { "error",   LOG_ERR },
        { "warning", LOG_WARNING },
        { "notice",  LOG_NOTICE },
        { "info",    LOG_INFO },
        { "debug",   LOG_DEBUG },
};

static int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
                if (streq_ptr(log_levels[i].name, s))
                        return log_levels[i].level;
        return -EINVAL;
}

static void help(void) {
        printf(_("%s [OPTIONS...]\n"
                 "\n"
                 "Leader elections for the machines of a LAN, served on D-Bus as %s.\n"
                 "\n"
                 "Options:\n"
                 "  -h --help             Show this help and exit\n"
                 "     --version          Show the version and exit\n"
                 "     --config=PATH      Configuration file (default: %s)\n"
                 "     --state-dir=DIR    Directory for the durable state (default: %s)\n"
                 "     --user             Serve on the session bus instead of the system bus\n"
                 "     --log-level=LEVEL  Maximum log level: err, warning, notice, info, debug\n"
                 "                        (default: info)\n"
                 "     --force-new-cluster\n"
                 "                        Disaster recovery: become the only voter of a new cluster,\n"
                 "                        keeping the elections (term ids move up); see electiond(8)\n"
                 "     --restore          The same for a restored backup of a state directory,\n"
                 "                        under a new node identity\n"),
               g_get_prgname() ?: "electiond", "org.electiond.Election1",
               ELECTIOND_DEFAULT_CONFIG, ELECTIOND_DEFAULT_STATE_DIR);
}

typedef struct Args {
        const char *config_path;
        const char *state_dir;
        bool user_bus;
        bool config_explicit;
        bool force_new_cluster;
        bool restore;
} Args;

/* Returns 1 to go on, 0 to exit successfully (help, version), -EINVAL on a usage error. */
static int parse_argv(int argc, char *argv[], Args *args) {
        enum {
                ARG_VERSION = 0x100,
                ARG_CONFIG,
                ARG_STATE_DIR,
                ARG_USER,
                ARG_LOG_LEVEL,
                ARG_FORCE_NEW_CLUSTER,
                ARG_RESTORE,
        };
        static const struct option options[] = {
                { "help",      no_argument,       NULL, 'h' },
                { "version",   no_argument,       NULL, ARG_VERSION },
                { "config",    required_argument, NULL, ARG_CONFIG },
                { "state-dir", required_argument, NULL, ARG_STATE_DIR },
                { "user",      no_argument,       NULL, ARG_USER },
                { "log-level", required_argument, NULL, ARG_LOG_LEVEL },
                { "force-new-cluster", no_argument, NULL, ARG_FORCE_NEW_CLUSTER },
                { "restore",   no_argument,       NULL, ARG_RESTORE },
                {}
        };
        int c, level;

        /* getopt prints its own message for unknown options and missing arguments. */
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("electiond %s\n", ELECTIOND_VERSION);
                        return 0;
                case ARG_CONFIG:
                        if (!*optarg) {
                                fprintf(stderr, _("%s: --config= needs a file name.\n"), g_get_prgname());
                                return -EINVAL;
                        }
                        args->config_path = optarg;
                        args->config_explicit = true;
                        break;
                case ARG_STATE_DIR:
                        if (!*optarg) {
                                fprintf(stderr, _("%s: --state-dir= needs a directory.\n"), g_get_prgname());
                                return -EINVAL;
                        }
                        args->state_dir = optarg;
                        break;
                case ARG_USER:
                        args->user_bus = true;
                        break;
                case ARG_LOG_LEVEL:
                        level = log_level_from_string(optarg);
                        if (level < 0) {
                                fprintf(stderr, _("%s: unknown log level '%s' (expected err, warning, notice, info or debug).\n"),
                                        g_get_prgname(), optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(level);
                        break;
                case ARG_FORCE_NEW_CLUSTER:
                        args->force_new_cluster = true;
                        break;
                case ARG_RESTORE:
                        args->restore = true;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        g_assert_not_reached();
                }

        if (optind < argc) {
                fprintf(stderr, _("%s: this program takes no arguments (got '%s').\n"), g_get_prgname(), argv[optind]);
                return -EINVAL;
        }
        return 1;
}

int electiond_main(int argc, char *argv[]) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        Args args = {
                .config_path = ELECTIOND_DEFAULT_CONFIG,
                .state_dir = ELECTIOND_DEFAULT_STATE_DIR,
        };
        g_autofree char *prgname = NULL;
        int r;

        setlocale(LC_ALL, "");
        bindtextdomain(GETTEXT_PACKAGE, LOCALEDIR);
        bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
        textdomain(GETTEXT_PACKAGE);
        prgname = g_path_get_basename(argc > 0 && argv[0] ? argv[0] : "electiond");
        g_set_prgname(prgname);

        r = parse_argv(argc, argv, &args);
        if (r < 0) {
                fprintf(stderr, _("Try '%s --help' for more information.\n"), g_get_prgname());
                return EXIT_USAGE;
        }
        if (r == 0)
                return EXIT_SUCCESS;

        ManagerOptions opts = {
                .config_path = args.config_path,
                .config_required = args.config_explicit,
                .state_dir = args.state_dir,
                .user_bus = args.user_bus,
                .force_new_cluster = args.force_new_cluster,
                .restore = args.restore,
        };

        r = daemon_new(&opts, &d);
        if (r < 0)
                return EXIT_FAILURE; /* daemon_new() logged why */

        r = daemon_run(d);
        if (r < 0)
                return EXIT_FAILURE;
        return r; /* the event loop's exit code */
}
