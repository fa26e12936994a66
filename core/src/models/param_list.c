/* The parameter-list walker: declarations, the public view, and loading
 * through the layers.c helpers. */
#include "param_list.h"

#include <stdarg.h>

#include "model_internal.h"

typedef enum { SLOT_CONV, SLOT_VECTOR, SLOT_MATRIX, SLOT_NORM } slot_kind;

typedef struct {
  slot_kind kind;
  char *key; /* a conv's or norm's prefix, a vector's or matrix's full name */
  int a, b, k, stride, pad; /* conv: cout, cin; vector: n; matrix: rows, cols; norm: c */
  gboolean bias;
  void *dst, *dst2;
} slot;

struct sige_param_list {
  GArray *slots;    /* of slot */
  GPtrArray *view;  /* of sige_param*, one per checkpoint tensor */
};

static void slot_clear(gpointer p) { g_free(((slot *)p)->key); }

static void param_free(gpointer p) {
  sige_param *q = p;
  g_free((char *)q->key);
  g_free(q);
}

sige_param_list *sige_param_list_new(void) {
  sige_param_list *l = g_new0(sige_param_list, 1);
  l->slots = g_array_new(FALSE, TRUE, sizeof(slot));
  g_array_set_clear_func(l->slots, slot_clear);
  l->view = g_ptr_array_new_with_free_func(param_free);
  return l;
}

void sige_param_list_free(sige_param_list *l) {
  if (!l) return;
  g_array_unref(l->slots);
  g_ptr_array_unref(l->view);
  g_free(l);
}

guint sige_param_list_length(const sige_param_list *l) { return l->view->len; }

const sige_param *sige_param_list_get(const sige_param_list *l, guint i) {
  return i < l->view->len ? g_ptr_array_index(l->view, i) : NULL;
}

static void view_add(sige_param_list *l, sige_param_role role, int ndim, const int64_t *shape,
                     const char *key, const char *suffix) {
  sige_param *p = g_new0(sige_param, 1);
  p->key = g_strconcat(key, suffix, NULL);
  p->role = role;
  p->ndim = ndim;
  p->numel = 1;
  for (int i = 0; i < ndim; i++) {
    p->shape[i] = shape[i];
    p->numel *= shape[i];
  }
  p->fan_in = ndim > 1 ? p->numel / shape[0] : 1;
  g_ptr_array_add(l->view, p);
}

static slot *slot_add(sige_param_list *l, slot_kind kind, const char *fmt, va_list ap) {
  slot s = {.kind = kind, .key = g_strdup_vprintf(fmt, ap)};
  g_array_append_val(l->slots, s);
  return &g_array_index(l->slots, slot, l->slots->len - 1);
}

/* A slot of n values and its view: a vector alone, or the first of a
 * norm's weight and bias (the caller adds the second). */
static slot *slot_add_1d(sige_param_list *l, slot_kind kind, int n, sige_tensor **dst,
                         sige_param_role role, const char *suffix, const char *fmt, va_list ap) {
  slot *s = slot_add(l, kind, fmt, ap);
  s->a = n;
  s->dst = dst;
  const int64_t shape[1] = {n};
  view_add(l, role, 1, shape, s->key, suffix);
  return s;
}

void sige_params_conv(sige_param_list *l, sige_conv_layer *dst, int cout, int cin, int k,
                      int stride, int pad, gboolean bias, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  slot *s = slot_add(l, SLOT_CONV, fmt, ap);
  va_end(ap);
  s->a = cout, s->b = cin, s->k = k, s->stride = stride, s->pad = pad, s->bias = bias;
  s->dst = dst;
  const int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
  view_add(l, SIGE_PARAM_WEIGHT, 4, ws, s->key, ".weight");
  if (bias) view_add(l, SIGE_PARAM_BIAS, 1, bs, s->key, ".bias");
}

void sige_params_vector(sige_param_list *l, sige_tensor **dst, sige_param_role role, int n,
                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  slot_add_1d(l, SLOT_VECTOR, n, dst, role, "", fmt, ap);
  va_end(ap);
}

void sige_params_linear(sige_param_list *l, sige_tensor **w_dst, sige_tensor **b_dst, int out,
                        int in, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *key = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  slot s = {.kind = SLOT_MATRIX, .key = g_strconcat(key, ".weight", NULL), .a = out, .b = in,
            .dst = w_dst};
  g_array_append_val(l->slots, s);
  const int64_t ws[2] = {out, in};
  view_add(l, SIGE_PARAM_WEIGHT, 2, ws, key, ".weight");
  sige_params_vector(l, b_dst, SIGE_PARAM_BIAS, out, "%s.bias", key);
}

void sige_params_matrix(sige_param_list *l, sige_tensor **dst, int rows, int cols,
                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  slot *s = slot_add(l, SLOT_MATRIX, fmt, ap);
  va_end(ap);
  s->a = rows, s->b = cols, s->dst = dst;
  const int64_t shape[2] = {rows, cols};
  view_add(l, SIGE_PARAM_WEIGHT, 2, shape, s->key, "");
}

void sige_params_norm(sige_param_list *l, sige_tensor **g_dst, sige_tensor **b_dst, int c,
                      const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  slot *s = slot_add_1d(l, SLOT_NORM, c, g_dst, SIGE_PARAM_NORM_WEIGHT, ".weight", fmt, ap);
  va_end(ap);
  s->dst2 = b_dst;
  const int64_t shape[1] = {c};
  view_add(l, SIGE_PARAM_NORM_BIAS, 1, shape, s->key, ".bias");
}

static size_t bytes_of(const sige_tensor *t) { return t ? sige_tensor_bytes(t) : 0; }

gboolean sige_param_list_load(const sige_param_list *l, const sige_weights *w, size_t *bytes,
                              GError **error) {
  size_t total = 0;
  for (guint i = 0; i < l->slots->len; i++) {
    const slot *s = &g_array_index(l->slots, slot, i);
    gboolean ok = TRUE;
    switch (s->kind) {
      case SLOT_CONV:
        ok = sige_load_conv(w, s->key, s->a, s->b, s->k, s->stride, s->pad, s->bias, s->dst,
                            error);
        break;
      case SLOT_VECTOR:
        ok = (*(sige_tensor **)s->dst = sige_load_vector(w, s->key, s->a, error)) != NULL;
        break;
      case SLOT_MATRIX:
        ok = (*(sige_tensor **)s->dst = sige_load_matrix(w, s->key, s->a, s->b, error)) != NULL;
        break;
      case SLOT_NORM:
        ok = sige_load_norm(w, s->key, s->a, s->dst, s->dst2, error);
        break;
    }
    if (!ok) return FALSE;
    switch (s->kind) {
      case SLOT_CONV:
        total += bytes_of(((sige_conv_layer *)s->dst)->weight) +
                 bytes_of(((sige_conv_layer *)s->dst)->bias);
        break;
      case SLOT_NORM:
        total += bytes_of(*(sige_tensor **)s->dst) + bytes_of(*(sige_tensor **)s->dst2);
        break;
      case SLOT_VECTOR:
      case SLOT_MATRIX:
        total += bytes_of(*(sige_tensor **)s->dst);
        break;
    }
  }
  if (bytes) *bytes = total;
  return TRUE;
}
