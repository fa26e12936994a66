#!/bin/sh
# `sige info` names every model a file holds: the "parts:" line must be
# exactly EXPECTED, and each part gets its own "model:" block.
#   info_parts.sh SIGE_BINARY WEIGHTS_FILE "kind, kind, ..."
sige=$1; file=$2; expected=$3
if [ ! -f "$file" ]; then
  echo "FAIL: $file is missing (configure -Dreference_dir=...)" >&2
  exit 1
fi
out=$("$sige" info "$file") || { echo "FAIL: sige info exited with $?" >&2; exit 1; }
echo "$out"
parts=$(echo "$out" | sed -n 's/^parts: *//p')
if [ "$parts" != "$expected" ]; then
  echo "FAIL: parts '$parts', expected '$expected'" >&2
  exit 1
fi
n_expected=$(echo "$expected" | tr ',' '\n' | wc -l)
n_models=$(echo "$out" | grep -c '^model: ')
if [ "$n_models" -ne "$n_expected" ]; then
  echo "FAIL: $n_models model blocks, expected $n_expected" >&2
  exit 1
fi
exit 0
