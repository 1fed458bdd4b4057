/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Command-line parsing and start-up, in the library so that main() stays one line. */
int electiond_main(int argc, char *argv[]);
