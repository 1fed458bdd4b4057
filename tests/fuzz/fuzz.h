/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Fuzz targets are libFuzzer-style; fuzz-driver.c runs them as a plain program when not built
 * with -fsanitize=fuzzer. */

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Valid inputs made with the real encoders, for the driver to mutate (array of GBytes*). */
void fuzz_seeds(GPtrArray *out);
