#!/usr/bin/python3
"""Plot and tabulate the JSON lines of tools/run_benchmarks.sh.

    /usr/bin/python3 tools/plot_benchmarks.py docs/benchmarks/results.jsonl \
        [--png docs/benchmarks/speedup.png] [--peer-png docs/benchmarks/sige-peer.png]

Writes speedup and MAC ratio vs edit ratio (one line per model) and prints
the markdown tables that docs/BENCHMARKS.md quotes.  Only what is in the
file is printed: nothing is interpolated.
"""
import argparse
import json
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display on the benchmark machines
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402


def classify(rec):
    """sige bench prints no record type: tell them apart by their fields."""
    if "kind" in rec:
        return rec["kind"]
    if "sgemm" in rec:
        return "sgemm"
    if "sdedit_steps" in rec:
        return "sdedit"
    return "sparse" if "speedup" in rec else "dense"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def sige_peer_table(peers):
    """Ours vs the published SIGE implementation (tools/peer/sige_peer.py)."""
    return table(
        ["model", "edit (stroke / dilated)", "ours dense ms", "ours sparse ms", "theirs dense ms",
         "theirs sparse ms", "sparse theirs / ours", "dense theirs / ours", "GMACs dense ours / theirs",
         "GMACs sparse ours / theirs", "peak RSS MB ours / theirs", "max diff dense / sparse (of range)",
         "agree"],
        [[r["model"], f'{100 * r["edit_ratio_stroke"]:.2f}% / {100 * r["edit_ratio_dilated"]:.2f}%',
          f'{r["ours_dense_ms"]:.0f}', f'{r["ours_sparse_ms"]:.0f}', f'{r["theirs_dense_ms"]:.0f}',
          f'{r["theirs_sparse_ms"]:.0f}', f'{r["theirs_sparse_ms"] / r["ours_sparse_ms"]:.2f}x',
          f'{r["theirs_dense_ms"] / r["ours_dense_ms"]:.2f}x',
          f'{r["ours_dense_gmacs"]:.2f} / {r["theirs_dense_gmacs"]:.2f}',
          f'{r["ours_sparse_gmacs"]:.2f} / {r["theirs_sparse_gmacs"]:.2f}',
          f'{r["ours_peak_rss_mb"]:.0f} / {r["theirs_peak_rss_mb"]:.0f}',
          f'{r["dense_max_abs_diff"] / r["dense_output_range"]:.1e} / '
          f'{r["sparse_max_abs_diff"] / r["sparse_output_range"]:.1e}',
          "yes" if r["agree"] else "NO"] for r in peers])


def sige_peer_plot(peers, png):
    """Grouped bars per case: time (log) and peak RSS, ours and theirs."""
    labels = [f'{r["model"]}\n{100 * r["edit_ratio_requested"]:g}%' for r in peers]
    series = [("ours dense", "ours_dense_ms", "#9ecae1"), ("ours sparse", "ours_sparse_ms", "#3182bd"),
              ("theirs dense", "theirs_dense_ms", "#fdae6b"), ("theirs sparse", "theirs_sparse_ms", "#e6550d")]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / len(series)
    for i, (name, key, colour) in enumerate(series):
        xs = [j + (i - 1.5) * width for j in range(len(peers))]
        a1.bar(xs, [r[key] for r in peers], width, label=name, color=colour)
    a1.set_yscale("log")
    a1.set_ylabel("ms per pass (median)")
    a1.set_xticks(range(len(peers)))
    a1.set_xticklabels(labels)
    a1.grid(True, axis="y", which="both", alpha=0.3)
    a1.legend(fontsize=8)
    models = sorted({r["model"] for r in peers})
    rss = {m: [r for r in peers if r["model"] == m] for m in models}
    for i, (name, key, colour) in enumerate((("ours", "ours_peak_rss_mb", "#3182bd"),
                                             ("theirs", "theirs_peak_rss_mb", "#e6550d"))):
        xs = [j + (i - 0.5) * 0.35 for j in range(len(models))]
        a2.bar(xs, [max(r[key] for r in rss[m]) for m in models], 0.35, label=name, color=colour)
    a2.set_xticks(range(len(models)))
    a2.set_xticklabels(models)
    a2.set_ylabel("peak RSS MB (largest edit)")
    a2.grid(True, axis="y", alpha=0.3)
    a2.legend(fontsize=8)
    r0 = peers[0]
    loads = [r[k] for r in peers for k in ("load_start", "load_end")]
    fig.suptitle(f'ours vs published SIGE (PyTorch), same weights and masks, {r0.get("cpu", "?")}, '
                 f'{r0["threads"]} threads, load {min(loads):.1f}-{max(loads):.1f}')
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--png", default=None, help="where to write the plot (default: none)")
    ap.add_argument("--peer-png", default=None,
                    help="where to write the plot of tools/peer/sige_peer.py's records (default: none)")
    args = ap.parse_args()
    recs = defaultdict(list)
    with open(args.results) as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                recs[classify(rec)].append(rec)

    sparse = sorted(recs["sparse"], key=lambda r: (r["model"], r["edit_ratio_requested"]))
    if sparse:
        print(table(["model", "edit (requested)", "stroke", "dilated diff", "dense ms",
                     "sparse ms", "speedup", "MAC ratio", "threads", "runs"],
                    [[r["model"], f'{100 * r["edit_ratio_requested"]:.1f}%',
                      f'{100 * r["edit_ratio_stroke"]:.2f}%', f'{100 * r["edit_ratio"]:.2f}%',
                      f'{r["dense_ms"]:.0f}', f'{r["sparse_ms"]:.0f}', f'{r["speedup"]:.2f}x',
                      f'{r["mac_ratio"]:.2f}x', r["threads"], r["runs"]] for r in sparse]))
        print()
    if recs["sdedit"]:
        print(table(["model", "steps", "dense ms", "snapshot ms", "sparse ms", "speedup",
                     "dense GMACs", "sparse GMACs", "caches MiB"],
                    [[r["model"], r["sdedit_steps"], f'{r["sdedit_dense_ms"]:.0f}',
                      f'{r["sdedit_snapshot_ms"]:.0f}', f'{r["sdedit_sparse_ms"]:.0f}',
                      f'{r["sdedit_speedup"]:.2f}x', f'{r["sdedit_dense_gmacs"]:.1f}',
                      f'{r["sdedit_sparse_gmacs"]:.1f}', f'{r["sdedit_cache_mb"]:.0f}']
                     for r in recs["sdedit"]]))
        print()
    if recs["sgemm"]:
        print(table(["threads", "M x N x K", "ms", "GFLOP/s"],
                    [[r["threads"], f'{s["m"]} x {s["n"]} x {s["k"]}', f'{s["ms"]:.1f}',
                      f'{s["gflops"]:.1f}'] for r in recs["sgemm"] for s in r["sgemm"]]))
        print()
    if recs["peer"]:
        print(table(["model", "threads", "runs", "ours ms", "torch ms", "ours / torch",
                     "max abs diff", "output range", "agree (<= 1e-3 of range)"],
                    [[r["model"], r["threads"], r["runs"], f'{r["ours_ms"]:.0f}',
                      f'{r["torch_ms"]:.0f}', f'{r["ratio"]:.2f}', f'{r["max_abs_diff"]:.2e}',
                      f'{r["output_range"]:.3g}', "yes" if r["agree"] else "NO"]
                     for r in recs["peer"]]))

    peers = sorted(recs["sige_peer"], key=lambda r: (r["model"], r["edit_ratio_requested"]))
    if peers:
        print(sige_peer_table(peers))
        print()
    if args.peer_png and peers:
        sige_peer_plot(peers, args.peer_png)

    if args.png and sparse:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        for model in sorted({r["model"] for r in sparse}):
            rs = [r for r in sparse if r["model"] == model]
            x = [100 * r["edit_ratio_requested"] for r in rs]
            a1.plot(x, [r["speedup"] for r in rs], "o-", label=model)
            a2.plot(x, [r["mac_ratio"] for r in rs], "o-", label=model)
        for ax, name in ((a1, "speedup (dense ms / sparse ms)"), (a2, "MAC ratio (dense / sparse)")):
            ax.set_xscale("log")
            ax.set_xticks(sorted({100 * r["edit_ratio_requested"] for r in sparse}))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")  # break-even with dense
            ax.set_xlabel("edit ratio (% of the image, requested)")
            ax.set_ylabel(name)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
        machine = recs["machine"][0] if recs["machine"] else {}
        fig.suptitle(f'sige bench, {machine.get("cpu", "?")}, {sparse[0]["threads"]} threads')
        fig.tight_layout()
        fig.savefig(args.png, dpi=100)


if __name__ == "__main__":
    main()
