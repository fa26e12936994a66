#include "sige-app/edit_params.h"

#include <math.h>

#include "app-i18n.h"
#include "sige-app/input_kind.h"
#include "sige-app/names.h"
#include "sige/error.h"

void sige_edit_params_init(sige_edit_params *p) {
  *p = (sige_edit_params){
      .strength = 0,
      .steps = 0,
      .sampler = SIGE_EDIT_SAMPLER_DEFAULT,
      .seed = 0,
      .device = SIGE_DEVICE_AUTO,
      .n_threads = 0,
      .fp16_caches = FALSE,
      .full_pass_above = 0,
      .memory_budget = 0,
  };
}

gboolean sige_edit_sampler_fits(sige_model_kind model, sige_sampler_kind sampler) {
  switch (model) {
    case SIGE_MODEL_DDPM_UNET:
    case SIGE_MODEL_SD_UNET: /* the SD pipeline's sige_sd_params.sampler */
      return sampler == SIGE_SAMPLER_DDIM || sampler == SIGE_SAMPLER_DPM_SOLVER_PP;
    case SIGE_MODEL_PD_UNET: /* distilled for its own 8-level sampler */
      return sampler == SIGE_SAMPLER_PD;
    default:
      return FALSE;
  }
}

static sige_sampler_kind default_sampler(sige_model_kind model) {
  return model == SIGE_MODEL_PD_UNET ? SIGE_SAMPLER_PD : SIGE_SAMPLER_DPM_SOLVER_PP;
}

static gboolean sdedit_options(sige_model_kind mk, const sige_edit_params *p,
                               sige_session_options *o, GError **error) {
  sige_sampler_kind sampler = default_sampler(mk);
  if (p->sampler != SIGE_EDIT_SAMPLER_DEFAULT) {
    sampler = (sige_sampler_kind)p->sampler;
    if (!sige_edit_sampler_fits(mk, sampler)) {
      g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                  _("The sampler %s cannot sample %s; it samples with %s."),
                  sige_sampler_kind_name(sampler), sige_model_kind_description(mk),
                  mk == SIGE_MODEL_PD_UNET ? "pd" : "ddim or dpmsolver++");
      return FALSE;
    }
  }
  o->sdedit = TRUE;
  o->seed = p->seed;
  sige_sampler_config_init(&o->sampler, sampler);
  const int total = o->sampler.total_steps;
  /* the sampler's own start is the default strength, so that no setting
   * and the default setting are one schedule */
  const double default_strength = (double)o->sampler.noise_level / total;
  if (!(p->strength >= 0 && p->strength <= 1)) { /* NaN too */
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("The strength %.2f is outside 0 to 1, the noise the model knows. Choose a "
                  "strength between 0.01 and 1 (0 = the default %g)."),
                p->strength, default_strength);
    return FALSE;
  }
  if (p->steps < 0) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("The steps %d are negative. Choose 1 or more steps (0 = the default)."),
                p->steps);
    return FALSE;
  }
  const double strength = p->strength > 0 ? p->strength : default_strength;
  o->sampler.noise_level = MAX(1, (int)(strength * total + 0.5));
  /* DDPM: the sampler's default steps; PD: one step per noise level */
  if (p->steps > 0)
    o->sampler.sample_steps = p->steps;
  else if (sampler == SIGE_SAMPLER_PD)
    o->sampler.sample_steps = o->sampler.noise_level;
  const int steps = o->sampler.sample_steps;
  if (steps > o->sampler.noise_level) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("%d steps at strength %.3f would be more steps than noise levels (%d). Lower "
                  "the steps or raise the strength."),
                steps, strength, o->sampler.noise_level);
    return FALSE;
  }
  if (sampler == SIGE_SAMPLER_DPM_SOLVER_PP && steps < 2) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("The DPM-Solver++ sampler needs at least 2 steps. Choose 2 or more steps, or "
                  "the DDIM sampler."));
    return FALSE;
  }
  return TRUE;
}

gboolean sige_edit_session_options(const sige_model *m, const sige_edit_params *p,
                                   sige_session_options *o, GError **error) {
  const sige_input_kind input = sige_model_input_kind(m, error);
  if (input == SIGE_INPUT_UNSUPPORTED) return FALSE;
  sige_session_options_init(o);
  o->n_threads = p->n_threads;
  if (p->full_pass_above > 0) o->full_pass_above = p->full_pass_above;
  o->fp16_caches = p->fp16_caches;
  o->memory_budget = p->memory_budget;
  o->device = p->device;
  /* a busy machine: fewer threads, not slower passes; a count the user gave
   * is kept (and with it the reduction order, so results repeat exactly) */
  o->follow_free_cpus = p->n_threads <= 0;
  if (input != SIGE_INPUT_IMAGE) return TRUE;
  return sdedit_options(sige_model_get_kind(m), p, o, error);
}

/* The number in text when all of it is one in [lo, hi] (whole when
 * `whole`): "0.5" but not "0.5x", "", " 1" or "nan"; else an error naming
 * the option, the text and `expected`. */
static gboolean parse_number(const char *option, const char *text, double lo, double hi,
                             gboolean whole, const char *expected, double *out,
                             GError **error) {
  char *end = NULL;
  const double v = text && *text && !g_ascii_isspace(*text) ? g_ascii_strtod(text, &end) : NAN;
  if (!end || end == text || *end != '\0' || !(v >= lo && v <= hi) || (whole && v != floor(v))) {
    g_set_error(error, SIGE_ERROR, SIGE_ERROR_INVALID,
                _("%s %s: expected %s; leave the option out for the model's default"), option,
                text ? text : "(none)", expected);
    return FALSE;
  }
  *out = v;
  return TRUE;
}

gboolean sige_edit_strength_parse(const char *option, const char *text, double *strength,
                                  GError **error) {
  /* above 0: the smallest double above it stands for "more than nothing" */
  return parse_number(option, text, nextafter(0.0, 1.0), 1.0, FALSE,
                      _("a number above 0 and at most 1 (the share of the noise schedule an "
                        "edit starts from)"),
                      strength, error);
}

gboolean sige_edit_steps_parse(const char *option, const char *text, int *steps,
                               GError **error) {
  double v = 0;
  if (!parse_number(option, text, 1, 1000, TRUE, _("a whole number of steps from 1 to 1000"), &v,
                    error))
    return FALSE;
  *steps = (int)v;
  return TRUE;
}

void sige_edit_explain_nomem(GError **error, sige_edit_phase phase, const sige_edit_params *p,
                             sige_edit_ui ui) {
  if (!error || !*error) return;
  GError *e = *error;
  if (!g_error_matches(e, SIGE_ERROR, SIGE_ERROR_NOMEM) &&
      !g_error_matches(e, G_FILE_ERROR, G_FILE_ERROR_NOMEM))
    return;
  const gboolean cli = ui == SIGE_EDIT_UI_CLI;
  const char *what = NULL;
  switch (phase) {
    case SIGE_EDIT_PHASE_WEIGHTS: what = _("loading the weights"); break;
    case SIGE_EDIT_PHASE_IMAGE: what = _("decoding the image"); break;
    case SIGE_EDIT_PHASE_CACHES: what = _("allocating the session's caches and work buffers"); break;
    case SIGE_EDIT_PHASE_SNAPSHOT:
      what = _("the snapshot (the full pass that records the caches)");
      break;
    case SIGE_EDIT_PHASE_SPARSE: what = _("the sparse pass"); break;
  }
  GString *fix = g_string_new(NULL);
  if (phase == SIGE_EDIT_PHASE_WEIGHTS) {
    g_string_append(fix, _("closing other programs, or a higher memory limit (ulimit -v): "
                           "the weights must fit in memory whole"));
  } else if (phase == SIGE_EDIT_PHASE_IMAGE) {
    g_string_append(fix, _("a smaller image, or a higher memory limit (ulimit -v)"));
  } else {
    /* each thread has its own work buffers (OpenBLAS: 128 MiB a thread) */
    g_string_append(fix, cli ? _("fewer threads (--threads 1)") : _("fewer threads (Threads: 1)"));
    g_string_append(fix, _(", a smaller image"));
    if (!p || !p->fp16_caches)
      g_string_append(fix, cli ? _(", fp16 caches (--fp16-caches, half the cache memory)")
                               : _(", float16 caches (Cache precision, half the cache memory)"));
    /* a budget below what the machine has refuses an edit that will not
     * fit before its pass, with what would fit */
    if (phase != SIGE_EDIT_PHASE_SPARSE) {
      if (p && p->memory_budget)
        g_string_append_printf(fix, cli ? _(", or a memory budget below the memory there is "
                                            "(--memory-budget, now %zu MiB)")
                                        : _(", or a memory budget below the memory there is "
                                            "(Memory budget, now %zu MiB)"),
                               p->memory_budget >> 20);
      else
        g_string_append(fix, cli ? _(", or a memory budget (--memory-budget MIB) that refuses "
                                     "what will not fit before the pass")
                                 : _(", or a memory budget (Memory budget) that refuses what "
                                     "will not fit before the pass"));
    }
  }
  GError *out = g_error_new(e->domain, e->code, _("Out of memory during %s (%s). What can help: %s."), what,
                            e->message, fix->str);
  g_string_free(fix, TRUE);
  g_error_free(e);
  *error = out;
}
