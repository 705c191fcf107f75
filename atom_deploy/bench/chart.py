"""Stacked bars per variant (load / encode / caption / index / script), ratio annotated."""

from __future__ import annotations

from pathlib import Path

STAGES = (("load", "model loading"), ("encode", "video encoding"), ("caption", "caption generation"),
          ("index", "indexing (MiniLM)"), ("script", "script generation"))
COLOURS = ("#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


def stacked_chart(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    medians = summary["medians"]
    inline = medians.get("atom", {}).get("overlap") == "off"
    labels = {"no_reuse": "without reuse\n(sequential)",
              "atom": "ATOM\n(reuse, encoder inline)" if inline else "ATOM\n(reuse + overlap)",
              "atom_batched": "ATOM\n+ batching"}
    variants = [v for v in labels if v in medians]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for x, variant in enumerate(variants):
        seconds = dict(medians[variant]["seconds"])
        if not seconds["encode"]:
            # Overlapped: encoding hides inside the captioning stage, drawn as one bar.
            seconds["caption"] = seconds["captioning"]
        bottom = 0.0
        for (key, name), colour in zip(STAGES, COLOURS):
            height = seconds[key]
            ax.bar(x, height, bottom=bottom, color=colour, label=name if x == 0 else None, width=0.55)
            bottom += height
        ax.text(x, bottom, f"{seconds['assembly_done']:.1f} s", ha="center", va="bottom")
    ratio = summary["ratios"]["assembly_done"]
    load_ratio = summary["ratios"]["load"]
    batched = summary.get("ratios_batched", {}).get("assembly_done")
    config = summary.get("config", {})
    ax.set_title(
        f"{config.get('model', '')} / {config.get('backend', '')}, {config.get('clips', '?')} clips: "
        f"assembly ATOM/no-reuse = {ratio:.2f}" + (f", + batching {batched:.2f}" if batched else "")
        + f", loading = {load_ratio:.2f}", fontsize=10,
    )
    ax.set_xticks(range(len(variants)), [labels[v] for v in variants])
    ax.set_ylabel("seconds (median)")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
