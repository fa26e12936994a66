/* Compares two 8-bit PNGs of the same size for the GIMP tests.
 *   png_compare A.png B.png [--max-diff N] [--within X,Y,W,H]... [--only X,Y,W,H] [--differ]
 * --max-diff: fail when a channel differs by more than N levels;
 * --within:   fail when a differing pixel lies outside the rectangle (given
 *             several times: outside all of them);
 * --only:     compare the pixels inside this rectangle only;
 * --differ:   fail when the images are identical.
 * Prints the largest difference, how many pixels differ and their
 * bounding box. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sige-app/png_io.h"

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr,
            "usage: %s A.png B.png [--max-diff N] [--within X,Y,W,H]... [--only X,Y,W,H] "
            "[--differ]\n",
            argv[0]);
    return 2;
  }
  enum { MAX_RECTS = 8 };
  int max_allowed = -1, need_differ = 0, n_within = 0;
  int wr[MAX_RECTS][4], only[4] = {0, 0, -1, -1};
  for (int i = 3; i < argc; i++) {
    if (!strcmp(argv[i], "--max-diff") && i + 1 < argc) max_allowed = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--within") && i + 1 < argc && n_within < MAX_RECTS) {
      int *r = wr[n_within++];
      if (sscanf(argv[++i], "%d,%d,%d,%d", &r[0], &r[1], &r[2], &r[3]) != 4) return 2;
    } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
      if (sscanf(argv[++i], "%d,%d,%d,%d", &only[0], &only[1], &only[2], &only[3]) != 4) return 2;
    } else if (!strcmp(argv[i], "--differ")) need_differ = 1;
    else return 2;
  }
  GError *error = NULL;
  guint8 *a = NULL, *b = NULL;
  int aw, ah, ac, bw, bh, bc;
  if (!sige_png_read(argv[1], 3, &a, &aw, &ah, &ac, &error) ||
      !sige_png_read(argv[2], 3, &b, &bw, &bh, &bc, &error)) {
    fprintf(stderr, "%s\n", error->message);
    return 1;
  }
  if (aw != bw || ah != bh) {
    fprintf(stderr, "sizes differ: %dx%d vs %dx%d\n", aw, ah, bw, bh);
    return 1;
  }
  int maxd = 0, x0 = aw, y0 = ah, x1 = -1, y1 = -1, outside = 0;
  long n = 0;
  for (int y = 0; y < ah; y++)
    for (int x = 0; x < aw; x++) {
      if (only[2] >= 0 && (x < only[0] || y < only[1] || x >= only[0] + only[2] ||
                           y >= only[1] + only[3]))
        continue;
      int d = 0;
      for (int c = 0; c < 3; c++) {
        int v = abs(a[((size_t)y * aw + x) * 3 + c] - b[((size_t)y * aw + x) * 3 + c]);
        if (v > d) d = v;
      }
      if (!d) continue;
      n++;
      if (d > maxd) maxd = d;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
      int inside = n_within == 0;
      for (int k = 0; k < n_within && !inside; k++)
        inside = x >= wr[k][0] && y >= wr[k][1] && x < wr[k][0] + wr[k][2] && y < wr[k][1] + wr[k][3];
      if (!inside) outside++;
    }
  printf("max-diff %d, %ld pixels differ, bbox %d,%d %dx%d\n", maxd, n, n ? x0 : 0, n ? y0 : 0,
         n ? x1 - x0 + 1 : 0, n ? y1 - y0 + 1 : 0);
  int fail = 0;
  if (max_allowed >= 0 && maxd > max_allowed) {
    printf("FAIL: difference %d > %d\n", maxd, max_allowed);
    fail = 1;
  }
  if (outside) {
    printf("FAIL: %d differing pixels outside", outside);
    for (int k = 0; k < n_within; k++)
      printf(" %d,%d %dx%d", wr[k][0], wr[k][1], wr[k][2], wr[k][3]);
    printf("\n");
    fail = 1;
  }
  if (need_differ && n == 0) {
    printf("FAIL: the images are identical\n");
    fail = 1;
  }
  g_free(a);
  g_free(b);
  return fail;
}
