"""PNG heatmaps of a report: layer x token attention share, layer x head entropy / sink share, activations."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from tokensieve.diagnose.report import Report  # noqa: E402


def _label(text: str, limit: int = 10) -> str:
    text = text.replace("\n", "\\n")
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return repr(text)


def _focus(report: Report, extra: list[int] = (), limit: int = 14) -> list[int]:
    """Columns worth a close look: the sinks, then other tokens carrying massive activations."""
    cols = [s.position for s in report.sinks]
    cols += [t for t in extra if t not in cols]
    return sorted(cols[:limit])


def _sink_ticks(ax, report: Report) -> None:
    """Sink positions as x ticks on a full-width heatmap, thinned so labels never overlap."""
    ticks, last = [], -(10**9)
    for s in report.sinks:
        if s.position - last >= max(1, report.tokens // 40):
            ticks.append(s.position)
            last = s.position
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks], fontsize=8)


def _zoom(ax, data: np.ndarray, report: Report, cols: list[int], cmap: str, norm) -> object:
    """The chosen token columns side by side, labelled with position and text (red primary, orange secondary)."""
    image = ax.imshow(data[:, cols], aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([f"{c} {_label(report.token_texts[c])}" for c in cols], rotation=60, ha="right", fontsize=8)
    kinds = {s.position: s.kind for s in report.sinks}
    for tick, col in zip(ax.get_xticklabels(), cols, strict=True):
        tick.set_color({"primary": "crimson", "secondary": "darkorange"}.get(kinds.get(col), "black"))
    _layer_axis(ax, report)
    return image


def _layer_axis(ax, report: Report) -> None:
    step = max(1, report.n_layers // 15)
    ax.set_yticks(range(0, report.n_layers, step))
    ax.set_ylabel("layer")


def plot_sinks(report: Report, path: Path) -> Path:
    share = report.share.numpy()
    norm = LogNorm(vmin=max(share[share > 0].min(), 1e-5), vmax=1)
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(14, 6), width_ratios=[3, 1.3], constrained_layout=True)
    image = ax.imshow(share, aspect="auto", interpolation="nearest", cmap="magma", norm=norm)
    _layer_axis(ax, report)
    _sink_ticks(ax, report)
    ax.set_xlabel(f"token position (0..{report.tokens - 1}); ticks at sink tokens")
    ax.set_title("all tokens")
    cols = _focus(report)
    if cols:
        _zoom(zoom, share, report, cols, "magma", norm)
        zoom.set_xlabel("sink tokens (red primary, orange secondary)")
        zoom.set_title("sink tokens, close up")
    else:
        zoom.set_axis_off()
    fig.colorbar(image, ax=[ax, zoom], label="share of the layer's attention mass (log)")
    fig.suptitle(f"{report.model}: attention mass each token receives, per layer ({report.tokens} tokens)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_heads(report: Report, path: Path) -> Path:
    entropy = np.zeros((report.n_layers, report.n_heads))
    sinkfrac = np.zeros_like(entropy)
    for h in report.heads:
        entropy[h.layer, h.head], sinkfrac[h.layer, h.head] = h.entropy, h.sink_fraction
    fig, axes = plt.subplots(1, 2, figsize=(11, max(4.5, 0.22 * report.n_layers + 1.5)), constrained_layout=True)
    panels = ((entropy, "viridis", "mean attention entropy (nats)", None),
              (sinkfrac, "Reds", "share of attention on sink tokens", (0, 1)))
    for ax, (data, cmap, label, limits) in zip(axes, panels, strict=True):
        vmin, vmax = limits or (None, None)
        image = ax.imshow(data, aspect="auto", interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_xticks(range(report.n_heads))
        ax.set_xlabel("head")
        _layer_axis(ax, report)
        fig.colorbar(image, ax=ax, label=label)
    for h in report.heads:
        if h.dormant:
            axes[1].text(h.head, h.layer, "D", ha="center", va="center", fontsize=7, color="white", weight="bold")
    dormant = sum(h.dormant for h in report.heads)
    axes[0].set_title("attention entropy per head")
    axes[1].set_title(f"sink share per head (D = dormant, >= {report.settings.dormant_at:g}): {dormant} dormant")
    fig.suptitle(f"{report.model}: heads on a {report.tokens}-token text")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_activations(report: Report, path: Path) -> Path:
    mags = report.token_max.numpy()
    norm = LogNorm(vmin=max(mags.min(), 1e-3), vmax=mags.max())
    fig, (ax, zoom, side) = plt.subplots(1, 3, figsize=(16, 6), width_ratios=[3, 1.3, 1.1],
                                         constrained_layout=True)
    image = ax.imshow(mags, aspect="auto", interpolation="nearest", cmap="inferno", norm=norm)
    _layer_axis(ax, report)
    _sink_ticks(ax, report)
    ax.set_xlabel(f"token position (0..{report.tokens - 1}); ticks at sink tokens")
    ax.set_title("max |h| per token, all tokens")
    massive = sorted({t for a in report.activations for t in a.tokens})
    _zoom(zoom, mags, report, _focus(report, massive), "inferno", norm)
    zoom.set_xlabel("sinks + tokens with massive activations")
    zoom.set_title("close up")
    fig.colorbar(image, ax=[ax, zoom], label="max |h| over features at the layer's output (log)")
    layers = np.arange(report.n_layers)
    side.semilogx([a.max for a in report.activations], layers, "o-", label="max |h|")
    side.semilogx([a.median for a in report.activations], layers, "s-", label="median |h|")
    side.set_ylim(report.n_layers - 0.5, -0.5)
    side.set_ylabel("layer")
    side.set_xlabel("|h| (log)")
    side.set_title(f"massive: >= {report.settings.massive_ratio:g}x median")
    side.legend(fontsize=8)
    fig.suptitle(f"{report.model}: massive activations in the residual stream (decoder layer outputs)")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(report: Report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [plot_sinks(report, out / "sinks.png"), plot_heads(report, out / "heads.png"),
            plot_activations(report, out / "activations.png")]
