"""PNG plots of one benchmark run: python bench/plot.py RESULTS.json OUT_DIR.

Reads the JSON that bench/run.ts writes and prints the names of the PNG files it made, one a line.
Runs in the matplotlib virtualenv that bench/scripts/install-matplotlib.sh makes (Agg backend: no
display, no browser).
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"controller": "#1f77b4", "sequential": "#ff7f0e", "drain": "#d62728", "none": "#7f7f7f"}


def save(fig, out_dir, stamp, name, made):
    path = os.path.join(out_dir, f"{stamp}-{name}.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    made.append(os.path.basename(path))


def markers(ax, env):
    fargate = env["fargateDelayMs"] / 1000
    window = env["windowMs"] / 1000
    ax.axvline(fargate, color="#2ca02c", linestyle=":", linewidth=1)
    ax.axvline(window, color="black", linestyle="--", linewidth=1)
    ymax = ax.get_ylim()[1]
    ax.text(fargate, ymax, " Fargate start", va="top", fontsize=8, color="#2ca02c")
    ax.text(window, ymax, " deadline", va="top", fontsize=8)


def timeline(results, out_dir, stamp, made):
    strategies = results["strategies"]
    if not strategies:
        return
    env = results["environment"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for r in strategies:
        color = COLORS.get(r["strategy"])
        d = r["timeline"]["deficit"]
        if d:
            top.step([p[0] / 1000 for p in d], [p[1] for p in d], where="post", label=r["strategy"], color=color)
        end = r["observedSeconds"]
        a = [p for p in r["timeline"]["available"] if p[0] / 1000 <= end]
        affected = max(r["affected"], 1)
        xs = [p[0] / 1000 for p in a] + [end]
        ys = [100 * p[1] / affected for p in a] + [100 * (a[-1][1] if a else 0) / affected]
        bottom.step(xs, ys, where="post", label=r["strategy"], color=color)
    top.set_ylabel("replicas below desired\n(readyReplicas < spec.replicas)")
    top.set_title(f"{results['options']['n']} Deployments, {results['options']['k']} of {results['options']['nodes']} nodes warned, time scale {env['timeScale']}")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_ylabel("affected Deployments fully available\non surviving capacity (%)")
    bottom.set_xlabel("seconds since the warning (wall clock)")
    bottom.set_ylim(0, 105)
    bottom.grid(alpha=0.3)
    markers(top, env)
    markers(bottom, env)
    save(fig, out_dir, stamp, "timeline", made)


def summary(results, out_dir, stamp, made):
    strategies = results["strategies"]
    if not strategies:
        return
    names = [r["strategy"] for r in strategies]
    colors = [COLORS.get(n, "#333333") for n in names]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = [
        (axes[0][0], [r["availableBeforeDeadlinePct"] for r in strategies], "% of affected Deployments fully available\non surviving capacity before the deadline", "{:.0f} %"),
        (axes[0][1], [r["replicaSecondsBelowDesired"] for r in strategies], "replica-seconds below desired (wall clock)", "{:.0f}"),
        (axes[1][0], [r["hitZero"] for r in strategies], "Deployments that hit 0 ready replicas", "{:.0f}"),
        (axes[1][1], [r["phase1Seconds"] if r["phase1Seconds"] is not None else 0 for r in strategies], "phase 1: warning -> last patch (s)", "{:.2f}"),
    ]
    for ax, values, title, fmt in panels:
        bars = ax.bar(names, values, color=colors)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        for bar, v in zip(bars, values):
            ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), fmt.format(v), ha="center", va="bottom", fontsize=8)
    axes[1][0].yaxis.get_major_locator().set_params(integer=True)
    ax = axes[1][1]
    ax.clear()
    # A strategy that had not patched every affected Deployment by the end shows the observation's length.
    unfinished = [r["phase1Seconds"] is not None and r["patched"] < r["affected"] for r in strategies]
    phase1 = [r["observedSeconds"] if u else r["phase1Seconds"] for r, u in zip(strategies, unfinished)]
    bars = ax.bar(names, [v if v is not None else 0 for v in phase1], color=colors, hatch=None)
    ax.set_title("phase 1: warning -> last patch (s, log scale)", fontsize=9)
    ax.grid(axis="y", alpha=0.3, which="both")
    present = [v for v in phase1 if v]
    floor = results.get("floor")
    if present:
        ax.set_yscale("log")
        low = min(present + ([floor["seconds"]] if floor else []))
        ax.set_ylim(low / 3, max(present) * 3)
    for bar, v, u, r in zip(bars, phase1, unfinished, strategies):
        if u:
            bar.set_alpha(0.4)
        label = "n/a" if v is None else (f"> {v:.0f}\n({r['patched']}/{r['affected']})" if u else f"{v:.2f}")
        y = bar.get_height() if v else ax.get_ylim()[0]
        ax.text(bar.get_x() + bar.get_width() / 2, y, label, ha="center", va="bottom", fontsize=8)
    if floor:
        ax.axhline(floor["seconds"], color="black", linestyle="--", linewidth=1)
        ax.text(len(names) - 0.5, floor["seconds"], f"floor {floor['seconds']:.2f} s", ha="right", va="bottom", fontsize=8)
    fig.tight_layout()
    save(fig, out_dir, stamp, "summary", made)


def detection(results, out_dir, stamp, made):
    d = results.get("detection")
    if not d or not d["samples"]:
        return
    samples = sorted(s * 1000 for s in d["samples"])
    fig, ax = plt.subplots(figsize=(7, 4))
    ys = [100 * (i + 1) / len(samples) for i in range(len(samples))]
    ax.step(samples, ys, where="post", color=COLORS["controller"])
    ax.plot(samples, ys, "o", color=COLORS["controller"], markersize=3)
    ax.axvline(d["p50"] * 1000, color="gray", linestyle=":")
    ax.axvline(d["p95"] * 1000, color="gray", linestyle="--")
    ax.text(d["p50"] * 1000, 5, f" p50 {d['p50'] * 1000:.0f} ms", fontsize=8)
    ax.text(d["p95"] * 1000, 15, f" p95 {d['p95'] * 1000:.0f} ms", fontsize=8)
    ax.set_xlabel("SendMessage -> first patch (ms)")
    ax.set_ylabel("% of events")
    ax.set_title(f"Detection latency, {len(samples)} single events")
    ax.grid(alpha=0.3)
    save(fig, out_dir, stamp, "detection", made)


def scaling(results, out_dir, stamp, made):
    points = results.get("scaling") or []
    if not points:
        return
    # One line per set of node flags (BENCH_NODE_FLAGS), in the order first run.
    groups = {}
    for p in points:
        groups.setdefault(" ".join(p.get("nodeFlags") or []) or "no node flags", []).append(p)
    several = len(groups) > 1
    replicas = points[0].get("replicas", 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for i, (flags, group) in enumerate(groups.items()):
        ns = [p["n"] for p in group]
        suffix = f" ({flags})" if several else ""
        phase1 = [p["phase1Seconds"] for p in group]
        left.plot([n for n, v in zip(ns, phase1) if v is not None], [v for v in phase1 if v is not None], "o-", color=COLORS["controller"] if not several else None, label="warning -> last patch" + suffix)
        if not several:
            logged = [p["phase1LoggedMax"] for p in group]
            left.plot([n for n, v in zip(ns, logged) if v is not None], [v for v in logged if v is not None], "s--", color="#9467bd", label="controller's own phase 1")
        right.plot(ns, [p["peakRssMiB"] for p in group], "o-", color="#8c564b" if not several else None, label=flags if several else None)
        for n, p in zip(ns, group):
            right.annotate(f"{p['peakRssMiB']:.0f}", (n, p["peakRssMiB"]), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=8)
    left.set_xscale("log")
    left.set_xlabel(f"Deployments (N, {replicas} replica{'s' if replicas > 1 else ''} each; half patched)")
    left.set_ylabel("seconds")
    left.set_title("Phase 1 time")
    left.legend(fontsize=8)
    left.grid(alpha=0.3, which="both")
    right.set_xscale("log")
    right.set_xlabel("Deployments (N)")
    right.set_ylabel("MiB")
    right.set_title("Controller peak RSS (VmHWM)")
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3, which="both")
    if several:
        right.legend(fontsize=8)
    fig.tight_layout()
    save(fig, out_dir, stamp, "scaling", made)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[1]) as f:
        results = json.load(f)
    out_dir = sys.argv[2]
    stamp = results["stamp"]
    made = []
    timeline(results, out_dir, stamp, made)
    summary(results, out_dir, stamp, made)
    detection(results, out_dir, stamp, made)
    scaling(results, out_dir, stamp, made)
    for name in made:
        print(name)


if __name__ == "__main__":
    main()
