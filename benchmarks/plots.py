"""The plots of ``docs/benchmarks.md``, drawn from the results JSON only (matplotlib, Agg)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # the backend must be chosen first

from . import e2e, overshoot
from .peers import LABELS

if TYPE_CHECKING:
    from ._harness import Output

COLORS: Final = {
    "vendor": "#d62728",
    "chunked": "#ff7f0e",
    "aiometer": "#9467bd",
    "workers": "#7f7f7f",
    "lanepool_batch": "#1f77b4",
    "lanepool_map": "#2ca02c",
}


def _save(
    figure: Any, output: Output, name: str, rect: tuple[float, float, float, float] | None = None
) -> str:
    path = output.images / f"bench_{name}.png"
    figure.tight_layout(rect=rect)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"img/{path.name}"


def plot_overhead(document: dict[str, Any], output: Output) -> list[str]:
    cells = document["cells"]
    config = document["config"]
    images = []
    figure, axis = plt.subplots(figsize=(9, 4.2))
    lanes = config["lanes"]
    for peer in LABELS:
        points = [
            (cell["items"], cell["us_per_item"][peer])
            for cell in cells
            if cell["lanes"] == lanes and peer in cell["us_per_item"]
        ]
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            axis.plot(xs, ys, "o-", label=LABELS[peer], color=COLORS[peer])
    axis.set(xscale="log", yscale="log", xlabel="items", ylabel="CPU us per item (median)")
    axis.set_title(f"Scheduling overhead per no-op item, {lanes} lanes")
    axis.grid(visible=True, which="both", alpha=0.3)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    images.append(_save(figure, output, "overhead_items"))

    figure, axis = plt.subplots(figsize=(9, 4.2))
    items = config["lanes_sweep_items"]
    for peer in LABELS:
        points = [
            (cell["lanes"], cell["us_per_item"][peer])
            for cell in cells
            if cell["items"] == items and peer in cell["us_per_item"]
        ]
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            axis.plot(xs, ys, "o-", label=LABELS[peer], color=COLORS[peer])
    axis.set(xscale="log", yscale="log", xlabel="lanes", ylabel="CPU us per item (median)")
    axis.set_xscale("log", base=2)
    axis.set_title(f"Scheduling overhead per no-op item, {items:,} items")
    axis.grid(visible=True, which="both", alpha=0.3)
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    images.append(_save(figure, output, "overhead_lanes"))
    return images


def plot_memory(document: dict[str, Any], output: Output) -> list[str]:
    rows = document["rows"]
    figure, axis = plt.subplots(figsize=(8.5, 3.6))
    names = [row["peer"] for row in rows]
    growth = [max(row["growth_mb"], 0.0) for row in rows]
    axis.barh(range(len(names)), growth, color=[COLORS[name] for name in names])
    axis.set_yticks(range(len(names)), [LABELS[name] for name in names])
    axis.set_xscale("symlog", linthresh=1)
    axis.set_xlim(0, max(*growth, 10) * 30)
    for position, value in enumerate(growth):
        axis.text(value, position, f" +{value:.1f} MB", va="center", fontsize=8)
    axis.axvline(10, color="black", linestyle="--", linewidth=1)
    axis.set_xlabel("peak RSS growth, MB (symlog scale; dashed: the 10 MB target)")
    axis.set_title(f"Peak RSS growth, {document['config']['items']:,} no-op items")
    axis.invert_yaxis()
    return [_save(figure, output, "memory")]


def busy_lanes(spans: list[list[float]]) -> tuple[list[float], list[int]]:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    times, counts, busy = [0.0], [0], 0
    for moment, change in events:
        busy += change
        times.append(moment)
        counts.append(busy)
    return times, counts


def plot_utilization(document: dict[str, Any], output: Output) -> list[str]:
    shown = ("chunked", "lanepool_batch")
    rows = {row["peer"]: row for row in document["rows"]}
    figure, axes = plt.subplots(len(shown), 1, figsize=(8, 4.8), sharex=True, sharey=True)
    lanes = document["config"]["lanes"]
    for axis, peer in zip(axes, shown, strict=True):
        timeline = document["timelines"][peer]
        times, counts = busy_lanes(timeline["spans"])
        axis.step(times, counts, where="post", color=COLORS[peer], linewidth=0.7)
        axis.fill_between(times, counts, step="post", alpha=0.3, color=COLORS[peer])
        for start, end in timeline["rechecks"]:
            axis.axvspan(start, end, color="black", alpha=0.15, linewidth=0)
        axis.set_ylim(0, lanes + 0.5)
        axis.set_ylabel("busy lanes")
        axis.set_title(
            f"{LABELS[peer]}: utilization {rows[peer]['utilization']:.3f} (grey: account reads)",
            fontsize=9,
        )
    axes[-1].set_xlabel("seconds")
    return [_save(figure, output, "utilization")]


def _e2e_bars(axis: Any, cells: list[dict[str, Any]], key: str) -> float:
    """One group of bars per lane count, each labelled with its ratio to raw; the top value."""
    names = list(e2e.PEER_NAMES)
    width = 0.8 / len(names)
    for offset, name in enumerate(names):
        xs = [position + offset * width for position in range(len(cells))]
        ys = [cell[key][name] for cell in cells]
        axis.bar(xs, ys, width, label=e2e.LABELS[name], color=f"C{offset}")
        for x, y, cell in zip(xs, ys, cells, strict=True):
            axis.text(
                x, y, f"{cell['ratio_to_raw'][name]:.2f}x", ha="center", va="bottom", fontsize=7
            )
    axis.set_xticks(
        [position + width * (len(names) - 1) / 2 for position in range(len(cells))],
        [f"{cell['lanes']} lanes" for cell in cells],
    )
    return float(max(max(cell[key].values()) for cell in cells))


def plot_e2e(document: dict[str, Any], output: Output) -> list[str]:
    bound = document.get("lane_bound")
    panels = 2 if bound is not None else 1
    figure, axes = plt.subplots(1, panels, figsize=(6.2 * panels, 4.8), squeeze=False)
    axis = axes[0][0]
    top = _e2e_bars(axis, document["cells"], "requests_per_second")
    ceiling = max(row["requests_per_second"] for row in document["ceiling"])
    axis.axhline(
        ceiling, color="black", linestyle="--", linewidth=1, label="the emulator's own ceiling"
    )
    axis.set_title("Zero latency (replayed answers): client CPU-bound", fontsize=10)
    axis.set_ylabel("requests per second (median)")
    axis.set_ylim(0, max(ceiling, top) * 1.15)
    handles, labels = axis.get_legend_handles_labels()
    if bound is not None:
        # Both lane counts on one scale: each rate over its lanes / mean latency ideal.
        axis = axes[0][1]
        _e2e_bars(axis, bound["cells"], "fraction_of_ideal")
        axis.axhline(1.0, color="black", linestyle=":", linewidth=1.2, label="lanes / mean latency")
        latency = bound["latency"]
        axis.set_title(
            f"{latency['median_ms']:g} ms median latency ({latency['distribution']}, sigma "
            f"{latency['sigma']:g}): lane-bound",
            fontsize=10,
        )
        axis.set_ylabel("fraction of the ideal, lanes / mean latency (median)")
        axis.set_ylim(0, 1.15)
        for handle, label in zip(*axis.get_legend_handles_labels(), strict=True):
            if label not in labels:  # the ideal's line; the peers are in the legend already
                handles.append(handle)
                labels.append(label)
    figure.suptitle("End-to-end throughput, server in another process (label: ratio to raw)")
    figure.legend(handles, labels, fontsize=7, loc="lower center", ncol=3)
    return [_save(figure, output, "e2e", rect=(0, 0.1, 1, 1))]


def plot_overshoot(document: dict[str, Any], output: Output) -> list[str]:
    rows = document["rows"]
    names = list(overshoot.PEER_NAMES)
    figure, axis = plt.subplots(figsize=(7.5, 4))
    width = 0.38
    for offset, drain in enumerate((False, True)):
        values = [
            next(row for row in rows if row["peer"] == name and row["drain"] == drain)[
                "overshoot_max"
            ]
            for name in names
        ]
        xs = [position + offset * width for position in range(len(names))]
        axis.bar(xs, values, width, label="with external drain" if drain else "sole consumer")
        for x, value in zip(xs, values, strict=True):
            axis.text(x, value, str(value), ha="center", va="bottom", fontsize=7)
    bound = document["config"]["lanes"] * document["config"]["max_cost"]
    axis.axhline(
        bound, color="black", linestyle="--", linewidth=1, label=f"lanes x max cost = {bound}"
    )
    axis.set_yscale("symlog", linthresh=10)
    axis.set_xticks(
        [position + width / 2 for position in range(len(names))],
        [overshoot.SHORT_LABELS[name] for name in names],
        fontsize=8,
    )
    axis.set_ylabel("credits below the floor (max over runs)")
    axis.set_title(f"Credit overshoot, budget {document['config']['budget']} credits, costs 1-12")
    axis.legend(fontsize=7)
    return [_save(figure, output, "overshoot")]


def plot_soak(document: dict[str, Any], output: Output) -> list[str]:
    row = document["soak"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    points = row["rss_points"]
    xs = [point["items"] / 1000 for point in points]
    left.plot(xs, [point["rss_mb"] for point in points], "o-", label="RSS")
    left.set(xlabel="items done (thousands)", ylabel="RSS, MB", title="Phase 1: RSS")
    left.set_ylim(min(point["rss_mb"] for point in points) - 1, None)
    kept = left.twinx()
    kept.plot(xs, [point["failed"] for point in points], "s--", color="C3", markersize=3)
    kept.set_ylabel("failed items kept by the report", color="C3")
    traced = row["trace_points"]
    if traced:
        xs = [point["items"] / 1000 for point in traced]
        right.plot(xs, [point["traced_mb"] for point in traced], "o-", color="C1")
        right.set_ylim(0, max(point["traced_mb"] for point in traced) * 1.3)
    right.set(
        xlabel="items done (thousands)",
        ylabel="traced heap, MB",
        title="Phase 2: tracemalloc (tracebacks dropped)",
    )
    return [_save(figure, output, "soak")]


PLOTS: Final = {
    "overhead": plot_overhead,
    "memory": plot_memory,
    "utilization": plot_utilization,
    "e2e": plot_e2e,
    "overshoot": plot_overshoot,
    "soak": plot_soak,
}
