#!/bin/sh
# sige bench --model sd at the --sd-tiny size: the report has a dense, a
# recording and a sparse line for the UNet and the VAE decoder, the sparse
# passes count fewer MACs than the dense ones (a 1.2 % stroke), the JSON
# report carries the same figures, and options that do not apply are refused.
# usage: test_bench_sd.sh SIGE
set -u
sige=$1
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/tap-lib.sh"
# sparse GMACs < dense GMACs (column 4 of the part's lines), both > 0
fewer_macs() { # part
  awk -v p="$1" '$1 == p && $2 == "dense" { d = $4 } $1 == p && $2 == "sparse" { s = $4 }
    END { exit !(d > 0 && s > 0 && s < d) }' "$tmp/out"
}
echo "1..6"
run="$sige bench --model sd --sd-tiny --threads 2 --runs 1 --warmup 0 --edit-ratio 0.012"
$run >"$tmp/out" 2>&1 && rc=0 || rc=$?
[ "$rc" = 0 ] || not_ok "tiny bench: exit $rc"
check "report lines" "^model sd: tiny SD layout" "^image 128 x 128, latent 16 x 16" \
  "^unet +dense +[0-9.]+ +[0-9.]+$" "^unet +record " "^unet +sparse +[0-9.]+ +[0-9.]+$" \
  "^decoder +dense +[0-9.]+ +[0-9.]+$" "^decoder +record " "^decoder +sparse " \
  "^unet +mask [0-9.]+%, MAC ratio [0-9.]+x, speedup [0-9.]+x" \
  "^decoder +mask [0-9.]+%, MAC ratio [0-9.]+x, speedup" "^peak RSS [0-9]+ MB$"
for p in unet decoder; do
  if fewer_macs $p; then ok "$p: sparse MACs < dense MACs"; else not_ok "$p: sparse MACs not < dense"; fi
done
$run --json >"$tmp/out" 2>&1 && rc=0 || rc=$?
# both parts' objects, MAC counts as integers: sparse < dense in each
if [ "$rc" = 0 ] && python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["model"] == "sd-tiny" and r["image"] == 128 and r["latent"] == 16
for p in ("unet", "decoder"):
    q = r[p]
    assert 0 < q["sparse_macs"] < q["dense_macs"], p
    for k in ("dense_ms", "record_ms", "sparse_ms", "mac_ratio", "speedup", "mask_ratio", "peak_rss_mb"):
        assert q[k] > 0, (p, k)
' "$tmp/out" 2>>"$tmp/out"; then ok "--json: both parts, sparse MACs < dense"
else not_ok "--json (exit $rc)"; fi
"$sige" bench --sd-tiny --model ddpm --runs 1 >"$tmp/out" 2>&1 && rc=0 || rc=$?
if [ "$rc" != 0 ] && grep -q -- "--sd-tiny needs --model sd" "$tmp/out"; then ok "--sd-tiny without sd refused"
else not_ok "--sd-tiny with ddpm: exit $rc"; fi
"$sige" bench --model sd --sd-tiny --layers >"$tmp/out" 2>&1 && rc=0 || rc=$?
if [ "$rc" != 0 ] && grep -q -- "--model sd takes" "$tmp/out"; then ok "--model sd --layers refused"
else not_ok "--model sd --layers: exit $rc"; fi
exit $failed
