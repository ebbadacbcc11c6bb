"""The PNG chart of `ckm bench mixed`: the cold run against its bounds, and the latencies."""

from __future__ import annotations

from pathlib import Path


def chart(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    bars = [("API bound", report.get("api_bound", {}).get("seconds"), "#9bbcd8", ""),
            ("ckm", report["cold"]["seconds"], "#2e6da4", ""),
            ("serial (extrapolated)", report.get("serial", {}).get("extrapolated_seconds"),
             "#d9a0a0", "//")]
    bars = [b for b in bars if b[1]]
    left.barh([b[0] for b in bars], [b[1] for b in bars], color=[b[2] for b in bars],
              hatch=None)
    for patch, (_, seconds, _, hatch) in zip(left.patches, bars, strict=True):
        patch.set_hatch(hatch)
        left.text(patch.get_width(), patch.get_y() + patch.get_height() / 2,
                  f" {seconds:.0f} s", va="center")
    if len(bars) > 2 and bars[-1][1] > 10 * bars[1][1]:
        left.set_xscale("log")
    w = report["workload"]
    left.set_title(f"cold: {w['pods']} pods, {w['services']} services, {w['policies']} "
                   "policies")
    left.set_xlabel("seconds to converge")
    for name, color in (("churn", "#2e6da4"), ("service", "#5aa55a"), ("burst", "#d08a2e")):
        samples = sorted(report.get(name, {}).get("samples_ms") or [])
        if samples:
            ys = [(i + 1) / len(samples) for i in range(len(samples))]
            right.step(samples, ys, where="post", color=color,
                       label=f"{name} (p99 {report[name]['p99_ms']:.0f} ms)")
    right.axvline(1000, color="#2e6da4", ls=":", lw=1, label="churn target p99 1 s")
    right.axvline(5000, color="#d08a2e", ls=":", lw=1, label="burst target p99 5 s")
    right.set_xscale("log")
    right.set_xlabel("ms from the Kubernetes change to Contrail current")
    right.set_ylabel("fraction of changes")
    right.set_title("latency distributions")
    right.legend(loc="lower right", fontsize=8)
    right.grid(alpha=0.3)
    fig.suptitle(f"ckm bench mixed (Contrail {report['latency_ms']} ms per call, cap "
                 f"{report['cap']}; {report['workers']} workers x {report['threads']} threads)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
