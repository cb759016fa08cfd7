"""Rich tables for `tokensieve inspect`: sinks, layers, heads, massive activations, head switches."""

from __future__ import annotations

from rich.table import Table

from tokensieve.diagnose.report import Report


def _bands(layers: list[int]) -> str:
    """[2, 3, 4, 7, 8] -> '2-4, 7-8'."""
    parts, start = [], None
    for i, layer in enumerate(layers):
        start = layer if start is None else start
        if i + 1 == len(layers) or layers[i + 1] != layer + 1:
            parts.append(f"{start}-{layer}" if layer != start else str(layer))
            start = None
    return ", ".join(parts)


def summary_tables(report: Report) -> list[Table]:
    sinks = Table(title=f"{report.model}: attention sinks on {report.tokens} tokens "
                        f"({'BOS prepended' if report.bos else 'no BOS'})")
    for col in ("pos", "token", "kind", "sink in layers", "appears", "fades", "peak score (layer)",
                "mean share", "massive act."):
        sinks.add_column(col)
    for s in report.sinks:
        sinks.add_row(str(s.position), repr(s.token), s.kind, _bands(s.layers), str(s.appears), str(s.fades),
                      f"{s.peak_score:.3f} ({s.peak_layer})", f"{s.mean_share:.3f}",
                      _bands(s.massive_layers) if s.massive else "no")

    layers = Table(title="per layer: share of attention on sinks, dormant heads, massive activations")
    for col in ("layer", "type", "sinks", "sink share", "dormant heads", "mean entropy", "max/median |h|",
                "massive tokens", "dims", "on sinks"):
        layers.add_column(col)
    for row, act in zip(report.layer_summary(), report.activations, strict=True):
        layers.add_row(
            str(row["layer"]), row["type"].replace("_attention", ""), ",".join(map(str, row["sinks"])) or "-",
            f"{row['sink_share']:.2f}" if row["sink_share"] is not None else "-",
            f"{row['dormant_heads']}/{report.n_heads}", f"{row['mean_entropy']:.2f}", f"{act.ratio:.0f}x",
            ",".join(map(str, act.tokens[:6])) or "-", ",".join(map(str, act.dims[:4])) or "-",
            {True: "yes", False: "partly" if act.sink_tokens else "no", None: "-"}[act.on_sinks],
        )
    tables = [sinks, layers]
    dormant = sum(h.dormant for h in report.heads)
    heads = Table(title=f"heads: {dormant} of {len(report.heads)} dormant "
                        f"(>= {report.settings.dormant_at:g} of attention on sinks); most dormant first")
    for col in ("layer", "head", "sink share", "entropy", "state"):
        heads.add_column(col)
    for h in sorted(report.heads, key=lambda h: -h.sink_fraction)[:10]:
        heads.add_row(str(h.layer), str(h.head), f"{h.sink_fraction:.3f}", f"{h.entropy:.2f}",
                      "dormant" if h.dormant else "active")
    tables.append(heads)
    if report.comparison:
        c = report.comparison
        switch = Table(title=f"head states, this text ({c['tokens'][0]} tok) -> compare text ({c['tokens'][1]} tok): "
                             f"dormant {c['dormant'][0]} -> {c['dormant'][1]}, "
                             f"{c['to_dormant']} became dormant, {c['to_active']} became active")
        for col in ("layer", "head", "from", "to", "sink share"):
            switch.add_column(col)
        for s in c["switched"][:20]:
            switch.add_row(str(s["layer"]), str(s["head"]), s["from"], s["to"],
                           f"{s['sink_fraction'][0]:.2f} -> {s['sink_fraction'][1]:.2f}")
        tables.append(switch)
    return tables
