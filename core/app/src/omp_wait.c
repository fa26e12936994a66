/* How idle OpenMP workers wait, chosen for every program that links the
 * application layer (the sige CLI, both GIMP plug-ins, the tests).
 *
 * libgomp spins a waiting worker for about 300000 iterations (a few ms)
 * before it sleeps.  On a machine where another process wants the cores,
 * those spins take time slices from that process and from our own busy
 * thread, and every parallel region then waits for the slowest thread:
 * with one competing busy process, 2 threads ran a sparse pass slower than
 * 1 (issue #19, docs/PERFORMANCE.md "Contention").  Waiting workers should
 * sleep after a short spin instead.
 *
 * libgomp reads its wait policy from the environment once, in its
 * initialiser, and offers no call to change it later.  An executable's
 * .preinit_array functions run before the initialisers of the shared
 * libraries it loads (ELF gABI, "Initialization and Termination
 * Functions"), so setting the variable here is the one point at which a
 * program can choose the policy without a wrapper script, and without
 * mutable state in libsige.  A value the user set (OMP_WAIT_POLICY or
 * GOMP_SPINCOUNT) wins. */
#include <stdlib.h>

/* ~0.1 ms of spinning: long enough for the back-to-back parallel regions
 * of one op, short against a scheduler time slice. */
#define SIGE_GOMP_SPINCOUNT "10000"

static void sige_omp_wait_policy(int argc, char **argv, char **envp) {
  (void)argc;
  (void)argv;
  (void)envp;
  if (!getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT"))
    setenv("GOMP_SPINCOUNT", SIGE_GOMP_SPINCOUNT, 0);
}

__attribute__((section(".preinit_array"), used)) static void (*const sige_omp_wait_preinit)(
    int, char **, char **) = sige_omp_wait_policy;
