/* Shared by the libFuzzer targets in tests/fuzz/ (see tools/fuzz.sh).
 *
 * The public readers take file paths (weights.h has no from-memory loader),
 * so the safetensors and zip targets write each input to a per-process
 * temporary file, in /dev/shm when it exists so no disk is touched. */
#pragma once
#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#include "sige/weights.h"

/* Writes data[0..size) to this process's temporary file (created on first
 * use, removed at exit) and returns its path; aborts when it cannot. */
const char *fuzz_write_temp(const char *suffix, const uint8_t *data, size_t size);

/* The oracle every target applies to a loader's result: exactly one of
 * `w` and `error` is set, the error has a message, and every element of
 * every tensor can be read (so ASan sees any table that lies about its
 * sizes).  Frees both.  Aborts on a broken contract. */
void fuzz_check_result(sige_weights *w, GError *error);

/* GLib criticals (g_return_if_fail) are programming errors: make them
 * crash the fuzzer instead of being printed and ignored. */
void fuzz_init_glib(void);
