/* A weights index: name -> dtype (as in the file), shape, and where the
 * bytes are, filled by one reader per file format.  Loading converts
 * nothing: a model fills its own tensors straight from the file with
 * sige_weights_read_f32 / sige_weights_read_tensor (F16/BF16/F64/integers
 * converted then) or sige_weights_read_tensor_half (F16 weights kept F16),
 * so loading a model costs its tensors and one tensor's buffer, not a
 * float32 copy of the whole file.
 *
 * The index keeps the file open (read with pread; a file that becomes
 * shorter after loading gives a read error, never a signal) until it is
 * freed.  sige_weights_get is the convenient but costly way: it converts the
 * tensor and keeps that float32 copy for the life of the index. */
#pragma once
#include <glib.h>
#include "sige/tensor.h"

G_BEGIN_DECLS

typedef enum {
  SIGE_DTYPE_F32, SIGE_DTYPE_F16, SIGE_DTYPE_BF16, SIGE_DTYPE_F64,
  SIGE_DTYPE_I64, SIGE_DTYPE_I32, SIGE_DTYPE_I16, SIGE_DTYPE_I8,
  SIGE_DTYPE_U8, SIGE_DTYPE_BOOL,
} sige_dtype;

typedef struct sige_weights sige_weights;

sige_weights *sige_weights_new(void);
void sige_weights_free(sige_weights *w);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sige_weights, sige_weights_free)

/* Strict safetensors reader: header length sane, JSON parsed with json-glib,
 * dtypes known, offsets in range, non-overlapping and covering the data,
 * byte size = numel x dtype size.  Errors name the file and the tensor. */
sige_weights *sige_weights_load_safetensors(const char *path, GError **error);

/* PyTorch checkpoints (.pth/.ckpt/.bin), zip (torch >= 1.6) or legacy form,
 * through a restricted unpickler: plain containers, tensors and storages
 * only; any other pickled global (os.system, ...) is refused with its name,
 * and nothing in the file is ever executed.  The state dict is taken from
 * 'ema', 'model', 'state_dict', 'params_ema' or 'params' when the top level
 * is a wrapper, and a "module." prefix is removed.  Names are not changed
 * otherwise.  Metadata: sige.source.format, sige.source.dict. */
sige_weights *sige_weights_load_torch(const char *path, GError **error);

/* safetensors or a PyTorch checkpoint, told apart by the file's content. */
sige_weights *sige_weights_load_file(const char *path, GError **error);

/* Detects the key layout (SPADE NVlabs, DDPM ermongroup/ddim, diffusers
 * UNet2DModel) and renames to our canonical names where needed, replacing
 * *w.  Sets the metadata sige.source.layout.  The error of an unknown layout
 * lists expected keys that are missing and keys that are not understood. */
gboolean sige_weights_canonicalize(sige_weights **w, GError **error);

/* sige_weights_load_file followed by sige_weights_canonicalize. */
sige_weights *sige_weights_load_any(const char *path, GError **error);

/* Writes every tensor (sorted by name) as `dtype` (F32 or F16); metadata may
 * be NULL (string -> string). */
gboolean sige_weights_save_safetensors(const sige_weights *w, const char *path,
                                       sige_dtype dtype, GHashTable *metadata,
                                       GError **error);

/* Takes ownership of t (replaces an existing entry). */
void sige_weights_insert(sige_weights *w, const char *name, sige_tensor *t);

/* The tensor as float32; NULL when absent (or when its bytes cannot be read:
 * a warning is logged, sige_weights_require gives the error).  Costly: the
 * first call converts the whole tensor and the copy stays cached in w
 * until w is freed (thread-safe).  Models fill their tensors with
 * sige_weights_read_tensor instead. */
const sige_tensor *sige_weights_get(const sige_weights *w, const char *name);
/* Like get, but sets SIGE_ERROR_MISSING / SIGE_ERROR_SHAPE naming the tensor
 * (and the file it came from) when absent or when its shape differs from
 * `shape` (ndim entries; an entry of -1 matches anything).  shape may be NULL. */
const sige_tensor *sige_weights_require(const sige_weights *w, const char *name, int ndim,
                                        const int64_t *shape, GError **error);
/* The checks of require (presence, shape) without converting anything. */
gboolean sige_weights_check(const sige_weights *w, const char *name, int ndim,
                            const int64_t *shape, GError **error);
/* The shape as in the index (a scalar is [1]); FALSE when absent.  ndim and
 * shape may be NULL; unused trailing entries of shape are 1. */
gboolean sige_weights_shape(const sige_weights *w, const char *name, int *ndim,
                            int64_t shape[SIGE_MAX_DIMS]);
/* Converts the tensor from its file dtype into dst, which holds n floats
 * (n must be its element count).  Errors name the file and the tensor:
 * MISSING, SHAPE (n differs), IO (the file cannot be read any more).
 * Nothing is cached; reads may run in parallel. */
gboolean sige_weights_read_f32(const sige_weights *w, const char *name, float *dst, size_t n,
                               GError **error);
/* A new float32 tensor filled with read_f32 after the checks of require:
 * what a model keeps as its own parameter. */
sige_tensor *sige_weights_read_tensor(const sige_weights *w, const char *name, int ndim,
                                      const int64_t *shape, GError **error);
/* Like read_tensor, but a tensor whose file dtype is F16 stays F16 in
 * memory (storage F16, the file's bits), and a BF16 one too when every
 * value is exactly an F16 (else it is widened to F32, as are all other
 * dtypes): what models keep as their conv, linear and embedding weights
 * when half weights are kept (sige_weights_keep_half).  Values are the
 * same either way: F16 -> F32 is exact. */
sige_tensor *sige_weights_read_tensor_half(const sige_weights *w, const char *name, int ndim,
                                           const int64_t *shape, GError **error);
/* Whether models loaded from now on keep half-precision weights half
 * (TRUE: half the memory, widened per use by the ops) or widen them to
 * float32 at load (FALSE: the old behaviour, a little faster per pass).
 * Default: the environment variable SIGE_HALF_WEIGHTS=keep|widen, else
 * keep.  Process-wide; set it before loading, not during a load. */
gboolean sige_weights_keep_half(void);
void sige_weights_set_keep_half(gboolean keep);
gboolean sige_weights_contains(const sige_weights *w, const char *name);
/* The dtype the tensor had in its file. */
sige_dtype sige_weights_dtype(const sige_weights *w, const char *name);
/* Sorted names (array owned by w, valid until w changes). */
const char *const *sige_weights_names(const sige_weights *w, guint *n);
/* __metadata__ entry or NULL. */
const char *sige_weights_metadata(const sige_weights *w, const char *key);
/* Sets (replaces) a __metadata__ entry: the sizes a model reads from it
 * ("sige.latent_h", ...) when a front-end sizes a model to its picture. */
void sige_weights_set_metadata(sige_weights *w, const char *key, const char *value);
/* The path it was loaded from, or NULL. */
const char *sige_weights_path(const sige_weights *w);

const char *sige_dtype_name(sige_dtype d);
size_t sige_dtype_size(sige_dtype d);

G_END_DECLS
