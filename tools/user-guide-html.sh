#!/bin/sh
# The user guide as one HTML page, the plug-ins' help (build step).
#   tools/user-guide-html.sh MARKDOWN_PY USER-GUIDE.md OUT.html
# MARKDOWN_PY is python3-markdown's markdown_py; its toc extension gives
# each heading an id ("## The dialog" -> #the-dialog) that
# plugin/help/gimp-help.xml points help ids at.
set -eu
md=$1 in=$2 out=$3
title=$(sed -n 's/^# //p' "$in" | head -n 1 | sed 's/&/\&amp;/g; s/</\&lt;/g')
{
  printf '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
  printf '<title>%s</title>\n' "$title"
  printf '<style>body{max-width:50em;margin:1em auto;padding:0 1em;font-family:sans-serif;line-height:1.4}'
  printf 'table{border-collapse:collapse}td,th{border:1px solid #aaa;padding:.2em .5em;vertical-align:top}'
  printf 'pre{background:#f4f4f4;padding:.5em;overflow:auto}img{max-width:100%%}</style>\n'
  printf '</head>\n<body>\n'
  "$md" -e utf-8 -x markdown.extensions.tables -x markdown.extensions.fenced_code \
    -x markdown.extensions.toc "$in"
  printf '\n</body>\n</html>\n'
} > "$out.tmp"
mv "$out.tmp" "$out"
