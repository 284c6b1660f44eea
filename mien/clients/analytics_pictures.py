"""Pictures of analytics results: a tag timeline and a summary contact sheet (PNG).

Both take the engine's result dataclasses (what AnalyticsClient returns too) and
write a PNG of exactly the requested pixel size. matplotlib runs headless (Agg).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TAG_COLOURS = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
               "#f032e6", "#bcf60c", "#008080", "#9a6324"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _lane_label(result) -> str:
    if result.person_id >= 0:
        return result.person_name or f"person {result.person_id}"
    return f"unknown (track {result.track_id})"


def timeline_png(report, path, *, width: int = 1200, dpi: int = 100) -> Path:
    """One lane per person, tagged segments coloured per tag over the video's time axis.

    Lane labels carry each person's appearance rate per tag; the legend each tag's
    overall rate (tagged faces / faces in the video). A segment of one sample is
    drawn one sample period wide, centred on its time.
    """
    plt = _pyplot()
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    lanes: list[tuple[int, int]] = []
    by_lane: dict[tuple[int, int], list] = {}
    for r in report.results:
        key = (r.person_id, r.track_id)
        if key not in by_lane:
            lanes.append(key)
            by_lane[key] = []
        by_lane[key].append(r)
    n_tags = max(len(report.tags), 1)
    colours = {t: TAG_COLOURS[i % len(TAG_COLOURS)] for i, t in enumerate(report.tags)}
    half = max(report.sample_period_ms, 1) / 2.0
    end_ms = max([report.duration_ms] + [s.end_ms + half for r in report.results for s in r.segments] + [1])

    height = 140 + 60 * max(len(lanes), 1)
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    ax = fig.add_axes([0.22, 55 / height, 0.74, 1 - 105 / height])
    for lane, key in enumerate(lanes):
        y0 = len(lanes) - 1 - lane  # first-seen person on top
        for r in by_lane[key]:
            t = report.tags.index(r.tag) if r.tag in report.tags else 0
            band = 0.8 / n_tags  # each tag its own band inside the lane, so overlaps stay visible
            bars = [(s.start_ms - half, s.end_ms - s.start_ms + 2 * half) for s in r.segments]
            ax.broken_barh(bars, (y0 + 0.4 - (t + 1) * band, band * 0.9), facecolors=colours.get(r.tag, "grey"))
    ax.set_yticks(range(len(lanes)))
    labels = []
    for key in reversed(lanes):
        rates = " · ".join(f"{r.tag} {100 * r.rate:.0f}%" for r in by_lane[key])
        labels.append(f"{_lane_label(by_lane[key][0])}\n{rates}")
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(-0.6, max(len(lanes), 1) - 0.4)
    ax.set_xlim(0, end_ms)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1000:.1f}"))
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel("time (s)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    total = {t: 0 for t in report.tags}
    for r in report.results:
        total[r.tag] = total.get(r.tag, 0) + r.tagged
    handles = [Patch(color=colours[t], label=f"{t}: {100 * total[t] / max(report.faces, 1):.0f}% of {report.faces} faces")
               for t in report.tags]
    if handles:
        ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(handles), 4),
                  fontsize=8, frameon=False)
    fig.suptitle(Path(report.uri).name or report.uri, fontsize=10, y=0.995, va="top")
    path = Path(path)
    fig.savefig(path, dpi=dpi)  # no bbox_inches="tight": the size stays exactly as asked
    plt.close(fig)
    return path


def _decode(jpeg: bytes | None):
    if not jpeg:
        return None
    import cv2

    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else image[:, :, ::-1]


def summary_sheet_png(summary, thumbnails: dict[int, bytes], path, *, columns: int = 5,
                      cell: int = 200, title: str | None = None, dpi: int = 100) -> Path:
    """One representative face per cluster, labelled with its size and share.

    Works for PersonSummary and StoreClusters. The picture is columns*cell px wide
    (fewer columns when there are fewer clusters) and rows*(cell+40)+50 px high.
    Each cell shows a bar under the face whose length is the cluster's share.
    """
    plt = _pyplot()
    clusters = list(summary.clusters)
    cols = max(1, min(columns, len(clusters)))
    rows = max(1, -(-len(clusters) // cols))
    width, height = cols * cell, rows * (cell + 40) + 50
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    if title is None:
        if hasattr(summary, "person_id"):
            who = summary.person_name or f"person {summary.person_id}"
            title = f"{who}: {summary.method} k={summary.k}, {summary.faces} faces"
        else:
            title = f"store: k={summary.k}, {summary.sampled} of {summary.faces} faces"
    fig.text(0.5, 1 - 25 / height, title, ha="center", va="center", fontsize=11)
    top_share = max([c.share for c in clusters] + [1e-9])
    for i, c in enumerate(clusters):
        row, col = divmod(i, cols)
        x0 = col * cell / width
        y0 = 1 - (50 + (row + 1) * (cell + 40)) / height
        ax = fig.add_axes([x0 + 10 / width, y0 + 40 / height, (cell - 20) / width, (cell - 20) / height])
        image = _decode(thumbnails.get(c.representative_face_id))
        if image is None:
            ax.set_facecolor("#dddddd")
            ax.text(0.5, 0.5, "no thumbnail", ha="center", va="center", fontsize=8, transform=ax.transAxes)
        else:
            ax.imshow(image)
        ax.set_xticks([])
        ax.set_yticks([])
        bar = fig.add_axes([x0 + 10 / width, y0 + 24 / height, (cell - 20) / width, 8 / height])
        bar.barh([0], [c.share / top_share], color="#4363d8")
        bar.set_xlim(0, 1)
        bar.axis("off")
        fig.text(x0 + 0.5 * cell / width, y0 + 10 / height,
                 f"#{c.index}  {c.size} faces ({100 * c.share:.1f}%)  face {c.representative_face_id}",
                 ha="center", va="center", fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
