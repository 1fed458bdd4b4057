/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "electiond-main.h"

int main(int argc, char *argv[]) {
        return electiond_main(argc, argv);
}
