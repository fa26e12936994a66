#!/bin/sh
# The translations are complete (TAP output):
#   check-catalogues.sh SOURCE_DIR
# The template is made afresh from the sources (xgettext with the keywords
# of meson's glib preset, over po/POTFILES), so that a string added to the
# code without `ninja sparse-regenerate-pot` counts as missing too.  Checks:
# every source file that marks strings with _() or N_() is in POTFILES; the
# committed template has the sources' messages; each catalogue of
# po/LINGUAS translates every one of them, none fuzzy (msgcmp); and msgfmt
# accepts it with --check (format strings, placeholders and mnemonics'
# counterparts), with no fuzzy or untranslated message left.
set -u
src=$1
. "$src/tests/gimp/tap-lib.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/sige-po.XXXXXX")
trap 'rm -rf "$work"' EXIT

# the files that mark strings, against POTFILES
listed=$(grep -v -e '^#' -e '^$' "$src/po/POTFILES" | sort)
marked=$(cd "$src" && grep -rlE '(^|[^A-Za-z0-9_])N?_\("' --include='*.c' core/app/src plugin ui | sort)
unlisted=$(printf '%s\n' "$marked" | grep -vxF "$listed" || true)
check "every source file with _() or N_() strings is in po/POTFILES" eq "$unlisted" ""

if ! (cd "$src" && xgettext --from-code=UTF-8 --keyword=_ --keyword=N_ --keyword=C_:1c,2 \
        --keyword=NC_:1c,2 --keyword=g_dngettext:2,3 --flag=N_:1:pass-c-format \
        --flag=g_strdup_printf:1:c-format --flag=g_set_error:4:c-format \
        -f po/POTFILES -o "$work/fresh.pot") > "$work/xgettext.log" 2>&1; then
  not_ok "xgettext reads the sources"
  sed 's/^/# /' "$work/xgettext.log"
  tap_plan
  exit
fi
n_msgs=$(grep -c '^msgid ' "$work/fresh.pot")
note "the sources have $((n_msgs - 1)) messages"
check "po/sparse-regenerate.pot has every message of the sources (else: ninja sparse-regenerate-pot)" \
  msgcmp --use-untranslated "$src/po/sparse-regenerate.pot" "$work/fresh.pot"

for lang in $(grep -v -e '^#' -e '^$' "$src/po/LINGUAS"); do
  po=$src/po/$lang.po
  check "$lang: every message of the sources is translated, none fuzzy" msgcmp "$po" "$work/fresh.pot"
  if stats=$(LC_ALL=C msgfmt --check --statistics -o /dev/null "$po" 2>&1); then
    case $stats in
      *fuzzy* | *untranslated*) not_ok "$lang: msgfmt --check, no fuzzy or untranslated message"
                                note "$stats" ;;
      *) ok "$lang: msgfmt --check, no fuzzy or untranslated message ($(echo "$stats" | tail -n 1))" ;;
    esac
  else
    not_ok "$lang: msgfmt --check, no fuzzy or untranslated message"
    note "$stats"
  fi
done
tap_plan
