/* The opcode loop of the restricted unpickler (protocols 2 to 5, the subset
 * that torch.save writes for state dicts).  Every read is bounds-checked
 * against the buffer; the stack, the marks, the memo and the nesting depth
 * are capped, so that a hostile file fails cleanly instead of exhausting
 * memory or the C stack. */
#include <string.h>

#include "pickle.h"
#include "sige/error.h"

#define MAX_STACK (1u << 20)
#define MAX_MARKS (1u << 12)
#define MAX_MEMO (1u << 22)
#define MAX_DEPTH 64
#define MAX_GLOBAL_NAME 256
/* What the values of one pickle may cost in all, freed or not: a fixed
 * allowance plus a multiple of its length.  A state dict's pickle costs a
 * few dozen bytes of values per byte (a tensor entry of ~150 bytes makes
 * about twenty small values); without a bound a short file can repeat an
 * allowed call (_codecs.encode on a long string, say) until memory runs
 * out, since each call copies its argument. */
#define ALLOC_BASE ((guint64)64 << 20)
#define ALLOC_PER_BYTE 64

typedef struct {
  const guint8 *base, *p, *end;
  const char *file;
  GPtrArray *stack; /* sige_pv*, owned */
  GArray *marks;    /* guint stack positions */
  GHashTable *memo; /* index -> sige_pv* (owned) */
  sige_pickle_persistent_fn persistent;
  void *user;
  GError **error;
  gsize op_offset;
  guint64 allocated, budget; /* bytes of values made so far, and the bound */
} vm;

G_GNUC_PRINTF(2, 3)
static gboolean fail(vm *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(m->error, SIGE_ERROR, SIGE_ERROR_FORMAT, "%s: pickle offset %" G_GSIZE_FORMAT ": %s",
              m->file, m->op_offset, msg);
  return FALSE;
}

static gboolean need(vm *m, gsize n) {
  if ((gsize)(m->end - m->p) < n)
    return fail(m, "truncated (needs %" G_GSIZE_FORMAT " more bytes, %" G_GSIZE_FORMAT " left)", n,
                (gsize)(m->end - m->p));
  return TRUE;
}

static guint64 read_le(vm *m, int n) {
  guint64 v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | m->p[i];
  m->p += n;
  return v;
}

static guint floor_mark(vm *m) {
  return m->marks->len ? g_array_index(m->marks, guint, m->marks->len - 1) : 0;
}

/* Counts `bytes` of new values against the pickle's budget. */
static gboolean charge(vm *m, guint64 bytes) {
  m->allocated += bytes;
  if (m->allocated > m->budget)
    return fail(m, "its values need more than %" G_GUINT64_FORMAT " bytes (64 MiB + %d per byte "
                "of the %" G_GSIZE_FORMAT "-byte pickle): refused as a memory exhaustion attempt",
                m->budget, ALLOC_PER_BYTE, (gsize)(m->end - m->base));
  return TRUE;
}

static guint64 value_cost(const sige_pv *v) {
  guint64 c = sizeof *v;
  switch (v->kind) {
    case SIGE_PV_STR:
    case SIGE_PV_BYTES:
    case SIGE_PV_BIGINT: c += v->s.len; break;
    case SIGE_PV_LIST:
    case SIGE_PV_TUPLE:
    case SIGE_PV_DICT: c += (guint64)v->items->len * sizeof(gpointer); break;
    default: break;
  }
  return c;
}

/* Pushes a new reference to a value already paid for (memo, DUP). */
static gboolean push_ref(vm *m, sige_pv *v) {
  if (m->stack->len >= MAX_STACK) {
    sige_pv_unref(v);
    return fail(m, "stack deeper than %u", MAX_STACK);
  }
  g_ptr_array_add(m->stack, v);
  return TRUE;
}

/* Pushes a value just made, charging what it costs. */
static gboolean push(vm *m, sige_pv *v) {
  if (!charge(m, value_cost(v))) {
    sige_pv_unref(v);
    return FALSE;
  }
  return push_ref(m, v);
}

/* Takes the top value (caller owns it); NULL with an error on underflow,
 * which includes reaching into the items below the last MARK. */
static sige_pv *pop(vm *m) {
  if (m->stack->len <= floor_mark(m)) {
    fail(m, "stack underflow");
    return NULL;
  }
  return g_ptr_array_steal_index(m->stack, m->stack->len - 1);
}

static sige_pv *top(vm *m) {
  if (m->stack->len <= floor_mark(m)) {
    fail(m, "stack underflow");
    return NULL;
  }
  return m->stack->pdata[m->stack->len - 1];
}

static gboolean pop_mark(vm *m, guint *pos) {
  if (!m->marks->len) return fail(m, "no MARK on the stack");
  *pos = g_array_index(m->marks, guint, m->marks->len - 1);
  g_array_set_size(m->marks, m->marks->len - 1);
  return TRUE;
}

/* Puts `child` into `container`: the child becomes read-only, which (with
 * the self check) rules out cycles, and the nesting depth is capped. */
static gboolean adopt(vm *m, sige_pv *container, sige_pv *child) {
  if (container->frozen)
    return fail(m, "modifies a %s that is already inside another container",
                sige_pv_kind_name(container->kind));
  if (child == container) return fail(m, "puts a %s inside itself", sige_pv_kind_name(child->kind));
  if (child->depth + 1 > MAX_DEPTH) return fail(m, "containers nested deeper than %d", MAX_DEPTH);
  child->frozen = TRUE;
  if (container->depth < child->depth + 1) container->depth = child->depth + 1;
  return TRUE;
}

/* UTF-8 with embedded NULs allowed (g_utf8_validate stops at them). */
static gboolean valid_utf8(const guint8 *p, gsize len) {
  const guint8 *end = p + len;
  while (p < end) {
    const guint8 *nul = memchr(p, 0, (gsize)(end - p));
    const guint8 *stop = nul ? nul : end;
    if (!g_utf8_validate((const char *)p, stop - p, NULL)) return FALSE;
    p = nul ? nul + 1 : end;
  }
  return TRUE;
}

static gboolean push_str(vm *m, sige_pv_kind kind, gsize len) {
  if (!need(m, len)) return FALSE;
  if (kind == SIGE_PV_STR && !valid_utf8(m->p, len)) return fail(m, "string is not valid UTF-8");
  sige_pv *v = sige_pv_new(kind);
  v->s.data = g_malloc(len + 1);
  memcpy(v->s.data, m->p, len);
  v->s.data[len] = 0;
  v->s.len = len;
  m->p += len;
  return push(m, v);
}

static gboolean push_long(vm *m, gsize n) {
  if (!need(m, n)) return FALSE;
  sige_pv *v;
  if (n <= 8) {
    guint64 u = n ? read_le(m, (int)n) : 0;
    if (n && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~0ull << (8 * n); /* sign-extend */
    v = sige_pv_new(SIGE_PV_INT);
    v->i = (gint64)u;
  } else {
    v = sige_pv_new(SIGE_PV_BIGINT);
    v->s.data = g_memdup2(m->p, n);
    v->s.len = n;
    m->p += n;
  }
  return push(m, v);
}

static gboolean memo_put(vm *m, guint64 index) {
  sige_pv *v = top(m);
  if (!v) return FALSE;
  if (index >= MAX_MEMO) return fail(m, "memo index %" G_GUINT64_FORMAT " is too large", index);
  if (!g_hash_table_contains(m->memo, GUINT_TO_POINTER((guint)index)) &&
      g_hash_table_size(m->memo) >= MAX_MEMO)
    return fail(m, "more than %u memo entries", MAX_MEMO);
  g_hash_table_insert(m->memo, GUINT_TO_POINTER((guint)index), sige_pv_ref(v));
  return TRUE;
}

static gboolean memo_get(vm *m, guint64 index) {
  sige_pv *v = index < MAX_MEMO ? g_hash_table_lookup(m->memo, GUINT_TO_POINTER((guint)index))
                                : NULL;
  if (!v) return fail(m, "memo index %" G_GUINT64_FORMAT " was never stored", index);
  return push_ref(m, sige_pv_ref(v));
}

/* Gathers the items above position `from` into a new tuple or list. */
static gboolean collect(vm *m, guint from, sige_pv_kind kind) {
  sige_pv *t = sige_pv_new(kind);
  for (guint i = from; i < m->stack->len; i++) {
    sige_pv *item = m->stack->pdata[i];
    if (!adopt(m, t, item)) {
      sige_pv_unref(t);
      return FALSE;
    }
    g_ptr_array_add(t->items, sige_pv_ref(item));
  }
  g_ptr_array_set_size(m->stack, from);
  t->frozen = kind == SIGE_PV_TUPLE; /* tuples never change */
  return push(m, t);
}

static gboolean tuple_n(vm *m, guint n) {
  if (m->stack->len < floor_mark(m) + n) return fail(m, "stack underflow");
  return collect(m, m->stack->len - n, SIGE_PV_TUPLE);
}

/* APPEND(S) and SETITEM(S): move the items above `from` into the container
 * just below them. */
static gboolean fill(vm *m, guint from, gboolean pairs) {
  if (from == 0 || from - 1 < floor_mark(m) || from > m->stack->len)
    return fail(m, "stack underflow");
  sige_pv *c = m->stack->pdata[from - 1];
  if (pairs ? c->kind != SIGE_PV_DICT : c->kind != SIGE_PV_LIST)
    return fail(m, "%s on a %s", pairs ? "SETITEM" : "APPEND", sige_pv_kind_name(c->kind));
  guint n = m->stack->len - from;
  if (pairs && n % 2) return fail(m, "SETITEMS with an odd number of items");
  /* a slot per item, and per dict key its index entry (a copy of the key) */
  guint64 cost = (guint64)n * sizeof(gpointer);
  for (guint i = from; pairs && i < m->stack->len; i += 2)
    cost += 64 + value_cost(m->stack->pdata[i]);
  if (!charge(m, cost)) return FALSE;
  for (guint i = from; i < m->stack->len; i++)
    if (!adopt(m, c, m->stack->pdata[i])) return FALSE;
  for (guint i = from; i < m->stack->len; i += pairs ? 2 : 1) {
    sige_pv *a = sige_pv_ref(m->stack->pdata[i]);
    if (!pairs) {
      g_ptr_array_add(c->items, a);
      continue;
    }
    sige_pv_kind kk = a->kind;
    if (!sige_pv_dict_set(c, a, sige_pv_ref(m->stack->pdata[i + 1])))
      return fail(m, "dict key of type %s is not supported", sige_pv_kind_name(kk));
  }
  g_ptr_array_set_size(m->stack, from);
  return TRUE;
}

static gboolean do_global(vm *m, const char *module, const char *name) {
  sige_pv *g = sige_pickle_global(module, name, m->file, m->error);
  return g && push(m, g);
}

static gboolean text_line(vm *m, char *buf) {
  const guint8 *nl = memchr(m->p, '\n', (gsize)(m->end - m->p));
  if (!nl) return fail(m, "GLOBAL without a newline");
  gsize len = (gsize)(nl - m->p);
  if (len == 0 || len >= MAX_GLOBAL_NAME) return fail(m, "GLOBAL name of %" G_GSIZE_FORMAT " bytes", len);
  for (gsize i = 0; i < len; i++)
    if (m->p[i] < 0x20 || m->p[i] > 0x7e) return fail(m, "GLOBAL name is not printable ASCII");
  memcpy(buf, m->p, len);
  buf[len] = 0;
  m->p = nl + 1;
  return TRUE;
}

static gboolean reduce(vm *m) {
  g_autoptr(sige_pv) args = pop(m);
  if (!args) return FALSE;
  g_autoptr(sige_pv) fn = pop(m);
  if (!fn) return FALSE;
  if (fn->kind != SIGE_PV_GLOBAL) return fail(m, "REDUCE on a %s", sige_pv_kind_name(fn->kind));
  if (args->kind != SIGE_PV_TUPLE) return fail(m, "REDUCE arguments are not a tuple");
  sige_pv *r = sige_pickle_reduce(fn, args, m->file, m->error);
  return r && push(m, r);
}

/* BUILD sets an object's state.  torch.save only sends it to an OrderedDict
 * (its _metadata attribute) or to a tensor (hooks); neither matters to a
 * weight table, so the state is checked for kind and dropped. */
static gboolean build(vm *m) {
  g_autoptr(sige_pv) state = pop(m);
  if (!state) return FALSE;
  sige_pv *obj = top(m);
  if (!obj) return FALSE;
  if (obj->kind != SIGE_PV_DICT && obj->kind != SIGE_PV_TENSOR)
    return fail(m, "BUILD on a %s", sige_pv_kind_name(obj->kind));
  return TRUE;
}

static gboolean persid(vm *m) {
  g_autoptr(sige_pv) pid = pop(m);
  if (!pid) return FALSE;
  if (!m->persistent) return fail(m, "persistent id outside a checkpoint");
  sige_pv *r = m->persistent(pid, m->user, m->error);
  return r && push(m, r);
}

static gboolean step(vm *m, gboolean *stop) {
  m->op_offset = (gsize)(m->p - m->base);
  if (!need(m, 1)) return FALSE;
  guint8 op = *m->p++;
  guint pos;
  switch (op) {
    case 0x80: /* PROTO */
      if (!need(m, 1)) return FALSE;
      if (*m->p > 5) return fail(m, "pickle protocol %d is not supported", *m->p);
      m->p++;
      return TRUE;
    case 0x95: /* FRAME: a length hint only */
      if (!need(m, 8)) return FALSE;
      m->p += 8;
      return TRUE;
    case '.': /* STOP */
      *stop = TRUE;
      return TRUE;
    case '(': /* MARK */
      if (m->marks->len >= MAX_MARKS) return fail(m, "more than %u nested MARKs", MAX_MARKS);
      pos = m->stack->len;
      g_array_append_val(m->marks, pos);
      return TRUE;
    case 'N': return push(m, sige_pv_new(SIGE_PV_NONE));
    case 0x88:
    case 0x89: {
      sige_pv *v = sige_pv_new(SIGE_PV_BOOL);
      v->b = op == 0x88;
      return push(m, v);
    }
    case 'J':
    case 'K':
    case 'M': {
      int n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
      if (!need(m, (gsize)n)) return FALSE;
      guint64 u = read_le(m, n);
      sige_pv *v = sige_pv_new(SIGE_PV_INT);
      v->i = op == 'J' ? (gint64)(gint32)(guint32)u : (gint64)u;
      return push(m, v);
    }
    case 0x8a: /* LONG1 */
      if (!need(m, 1)) return FALSE;
      return push_long(m, read_le(m, 1));
    case 0x8b: { /* LONG4 */
      if (!need(m, 4)) return FALSE;
      gint32 n = (gint32)(guint32)read_le(m, 4);
      if (n < 0) return fail(m, "negative LONG4 length");
      return push_long(m, (gsize)n);
    }
    case 'G': { /* BINFLOAT, big-endian */
      if (!need(m, 8)) return FALSE;
      guint64 u = 0;
      for (int i = 0; i < 8; i++) u = (u << 8) | m->p[i];
      m->p += 8;
      sige_pv *v = sige_pv_new(SIGE_PV_FLOAT);
      memcpy(&v->f, &u, sizeof v->f);
      return push(m, v);
    }
    case 0x8c: /* SHORT_BINUNICODE */
    case 'U':  /* SHORT_BINSTRING */
    case 'C':  /* SHORT_BINBYTES */
      if (!need(m, 1)) return FALSE;
      return push_str(m, op == 'C' ? SIGE_PV_BYTES : SIGE_PV_STR, read_le(m, 1));
    case 'X': /* BINUNICODE */
    case 'T': /* BINSTRING */
    case 'B': /* BINBYTES */
      if (!need(m, 4)) return FALSE;
      return push_str(m, op == 'B' ? SIGE_PV_BYTES : SIGE_PV_STR, read_le(m, 4));
    case 0x8d: /* BINUNICODE8 */
    case 0x8e: { /* BINBYTES8 */
      if (!need(m, 8)) return FALSE;
      guint64 n = read_le(m, 8);
      if (n > (guint64)(m->end - m->p)) return need(m, G_MAXSIZE);
      return push_str(m, op == 0x8e ? SIGE_PV_BYTES : SIGE_PV_STR, (gsize)n);
    }
    case '}': return push(m, sige_pv_new(SIGE_PV_DICT));
    case ']': return push(m, sige_pv_new(SIGE_PV_LIST));
    case ')': {
      sige_pv *t = sige_pv_new(SIGE_PV_TUPLE);
      t->frozen = TRUE;
      return push(m, t);
    }
    case 0x85: return tuple_n(m, 1);
    case 0x86: return tuple_n(m, 2);
    case 0x87: return tuple_n(m, 3);
    case 't': return pop_mark(m, &pos) && collect(m, pos, SIGE_PV_TUPLE);
    case 'l': return pop_mark(m, &pos) && collect(m, pos, SIGE_PV_LIST);
    case 'd':
      if (!pop_mark(m, &pos)) return FALSE;
      if (!push(m, sige_pv_new(SIGE_PV_DICT))) return FALSE;
      /* move the new dict below its items, then fill it */
      {
        sige_pv *d = g_ptr_array_steal_index(m->stack, m->stack->len - 1);
        g_ptr_array_insert(m->stack, (gint)pos, d);
      }
      return fill(m, pos + 1, TRUE);
    case 'a':
      if (m->stack->len < floor_mark(m) + 2) return fail(m, "stack underflow");
      return fill(m, m->stack->len - 1, FALSE);
    case 's':
      if (m->stack->len < floor_mark(m) + 3) return fail(m, "stack underflow");
      return fill(m, m->stack->len - 2, TRUE);
    case 'e':
    case 'u':
      if (!pop_mark(m, &pos)) return FALSE;
      if (pos < floor_mark(m) + 1) return fail(m, "stack underflow");
      return fill(m, pos, op == 'u');
    case 'q': /* BINPUT, LONG_BINPUT, BINGET, LONG_BINGET: a 1- or 4-byte memo index */
    case 'r':
    case 'h':
    case 'j': {
      int width = op == 'q' || op == 'h' ? 1 : 4;
      if (!need(m, (gsize)width)) return FALSE;
      guint64 index = read_le(m, width);
      return op == 'q' || op == 'r' ? memo_put(m, index) : memo_get(m, index);
    }
    case 0x94: return memo_put(m, g_hash_table_size(m->memo));
    case '0': /* POP: an item, or the MARK right on top */
      if (m->marks->len && floor_mark(m) == m->stack->len) return pop_mark(m, &pos);
      {
        sige_pv *v = pop(m);
        sige_pv_unref(v);
        return v != NULL;
      }
    case '1': /* POP_MARK */
      if (!pop_mark(m, &pos)) return FALSE;
      g_ptr_array_set_size(m->stack, pos);
      return TRUE;
    case '2': { /* DUP */
      sige_pv *v = top(m);
      return v && push_ref(m, sige_pv_ref(v));
    }
    case 'c': { /* GLOBAL "module\nname\n" */
      char module[MAX_GLOBAL_NAME], name[MAX_GLOBAL_NAME];
      return text_line(m, module) && text_line(m, name) && do_global(m, module, name);
    }
    case 0x93: { /* STACK_GLOBAL */
      g_autoptr(sige_pv) name = pop(m);
      if (!name) return FALSE;
      g_autoptr(sige_pv) module = pop(m);
      if (!module) return FALSE;
      if (name->kind != SIGE_PV_STR || module->kind != SIGE_PV_STR ||
          strlen(name->s.data) != name->s.len || strlen(module->s.data) != module->s.len)
        return fail(m, "STACK_GLOBAL needs two strings");
      return do_global(m, module->s.data, name->s.data);
    }
    case 'R': return reduce(m);
    case 'b': return build(m);
    case 'Q': return persid(m);
    case 0x81: return fail(m, "NEWOBJ (building an instance of a class) is not allowed");
    case 0x92: return fail(m, "NEWOBJ_EX (building an instance of a class) is not allowed");
    case 'i': return fail(m, "INST (building an instance of a class) is not allowed");
    case 'o': return fail(m, "OBJ (building an instance of a class) is not allowed");
    default: return fail(m, "opcode 0x%02x is not supported", op);
  }
}

static void memo_value_free(gpointer p) { sige_pv_unref(p); }

sige_pv *sige_pickle_load(const guint8 *data, gsize len, gsize *consumed, const char *file,
                          sige_pickle_persistent_fn persistent, void *user, GError **error) {
  vm m = {
    .base = data,
    .p = data,
    .end = data + len,
    .file = file,
    .stack = g_ptr_array_new_with_free_func((GDestroyNotify)sige_pv_unref),
    .marks = g_array_new(FALSE, FALSE, sizeof(guint)),
    .memo = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, memo_value_free),
    .persistent = persistent,
    .user = user,
    .error = error,
    .budget = ALLOC_BASE + (guint64)ALLOC_PER_BYTE * len,
  };
  gboolean stop = FALSE, ok = TRUE;
  while (ok && !stop) ok = step(&m, &stop);
  sige_pv *result = NULL;
  if (ok) {
    if (m.stack->len == 0)
      fail(&m, "STOP with an empty stack");
    else
      result = sige_pv_ref(m.stack->pdata[m.stack->len - 1]);
  }
  if (result && consumed) *consumed = (gsize)(m.p - data);
  g_ptr_array_unref(m.stack);
  g_array_unref(m.marks);
  g_hash_table_unref(m.memo);
  return result;
}
