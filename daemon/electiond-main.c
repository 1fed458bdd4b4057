/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* stub: being written */
#include "electiond-main.h"
int electiond_main(int argc, char *argv[]) { (void) argc; (void) argv; return 1; }
