#!/bin/sh
# sige bench --model sd at the --sd-tiny size: the report has a dense, a
# recording and a sparse line for the UNet and the VAE decoder, the sparse
# passes count fewer MACs than the dense ones (a 1.2 % stroke), the JSON
# report carries the same figures, --layers gives the decoder's named layer
# groups, --sd-part times one part, and options that do not apply are refused.
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
echo "1..9"
run="$sige bench --model sd --sd-tiny --threads 2 --runs 1 --warmup 0 --edit-ratio 0.012"
$run >"$tmp/out" 2>&1 && rc=0 || rc=$?
[ "$rc" = 0 ] || not_ok "tiny bench: exit $rc"
check "report lines" "^model sd: tiny SD layout" "^image 128 x 128, latent 16 x 16" \
  "^unet +dense +[0-9.]+ +[0-9.]+ +[0-9.]+$" "^unet +record " "^unet +sparse +[0-9.]+ +[0-9.]+ +[0-9.]+$" \
  "^decoder +dense +[0-9.]+ +[0-9.]+ +[0-9.]+$" "^decoder +record " "^decoder +sparse " \
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
    for k in ("dense_ms", "record_ms", "sparse_ms", "mac_ratio", "speedup", "mask_ratio", "peak_rss_mb",
              "dense_cpu_ms", "record_cpu_ms", "sparse_cpu_ms", "winograd_keep_limit_mib"):
        assert q[k] > 0, (p, k)
' "$tmp/out" 2>>"$tmp/out"; then ok "--json: both parts, sparse MACs < dense"
else not_ok "--json (exit $rc)"; fi
"$sige" bench --sd-tiny --model ddpm --runs 1 >"$tmp/out" 2>&1 && rc=0 || rc=$?
if [ "$rc" != 0 ] && grep -q -- "--sd-tiny and --sd-part need --model sd" "$tmp/out"; then ok "--sd-tiny without sd refused"
else not_ok "--sd-tiny with ddpm: exit $rc"; fi
"$sige" bench --model sd --sd-tiny --mask /dev/null >"$tmp/out" 2>&1 && rc=0 || rc=$?
if [ "$rc" != 0 ] && grep -q -- "--model sd takes" "$tmp/out"; then ok "--model sd --mask refused"
else not_ok "--model sd --mask: exit $rc"; fi
# --layers, decoder only: the tiny decoder's 16 groups (4 levels of 2 blocks,
# 3 upsamplers, conv_in, mid 3, out), named, their sparse MACs summing to
# the pass's (the pyramid counts none); no UNet object
$run --sd-part decoder --layers --json >"$tmp/out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 0 ] && python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert "unet" not in r, "unet timed"
d = r["decoder"]
g = d["layers"]
assert [x["group"] for x in g] == list(range(16)), [x["group"] for x in g]
assert g[0]["name"] == "post_quant_conv+conv_in" and g[2]["name"] == "mid.attn_1"
assert g[4]["name"] == "up.3.block.0" and g[15]["name"] == "norm_out+conv_out", g
assert abs(sum(x["sparse_gmacs"] for x in g) - d["sparse_gmacs"]) < 1e-6 * d["sparse_gmacs"] + 1e-9
assert abs(sum(x["dense_gmacs"] for x in g) - d["dense_gmacs"]) < 1e-6 * d["dense_gmacs"] + 1e-9
assert not g[0]["sparse"] and g[1]["sparse"] and not g[15]["sparse"]
' "$tmp/out" 2>>"$tmp/out"; then ok "--sd-part decoder --layers: 16 named groups, MACs add up"
else not_ok "--sd-part decoder --layers (exit $rc)"; cat "$tmp/out" >&2; fi
$run --sd-part unet --sparse-only >"$tmp/out" 2>&1 && rc=0 || rc=$?
if [ "$rc" = 0 ] && grep -Eq "^unet +sparse " "$tmp/out" && ! grep -q "^decoder" "$tmp/out" &&
   grep -Eq "^unet +mask .*\(dense not timed\)" "$tmp/out" &&
   grep -Eq "^unet +Winograd weights kept: [0-9]+ of [0-9]+ MiB" "$tmp/out"; then ok "--sd-part unet --sparse-only"
else not_ok "--sd-part unet --sparse-only (exit $rc)"; cat "$tmp/out" >&2; fi
"$sige" bench --model sd --sd-tiny --sd-part vae >"$tmp/out" 2>&1 && rc=0 || rc=$?
if [ "$rc" != 0 ] && grep -q -- "--sd-part must be 'unet' or 'decoder'" "$tmp/out"; then ok "--sd-part vae refused"
else not_ok "--sd-part vae: exit $rc"; fi
exit $failed
