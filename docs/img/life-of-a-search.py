"""Draw docs/img/life-of-a-search.svg: the request path of SearchExpression, file by file.

Run from the repository root: python docs/img/life-of-a-search.py (writes the .svg; with
--png also a .png to look at). Text is drawn as paths, so the SVG needs no font to render.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = Path(__file__).resolve().parent

# (lane, step title, files) from the client down to FAISS; the reply climbs back the same way
STEPS = [
    ("client", "1  client", "mien/clients/commands/query.py → search_calls.py\nSearchCalls.search: FaceQuery + filters"),
    ("client", "2  channel", "mien/clients/channels.py · errors.py\nnative_stub.py UnaryStub  |  grpcio stub"),
    ("wire", "3  gRPC C++ channel → front", "mien/native/channel.cc  ⟶  mien/native/front.cc\n"
                                          "inline methods ≤ 4 KiB: gRPC thread; else a worker"),
    ("server", "4  dispatch", "mien/server/native_front.py Dispatcher.unary\n"
                              "(or grpcio + interceptors: app.py, parsing.py)"),
    ("server", "5  servicer", "mien/server/servicer.py SearchExpression\n"
                              "@rpc (rpc_errors.py): validate, count, log, statuses"),
    ("server", "6  query → vector", "mien/server/context.py resolve_query\n"
                                    "vector · face id · image → detect, FaceQA, embed"),
    ("server", "7  refine", "mien/server/refine.py refine\n"
                            "max_distance, distinct: ask for 4× more until k pass"),
    ("store", "8  store", "mien/engine/store/store.py → search.py Searcher.search\n"
                          "lock + one LMDB read transaction, RowFilter"),
    ("store", "9  live index", "mien/engine/store/live.py sync\n"
                               "replay the change log: other writers' commits"),
    ("store", "10  FAISS", "mien/engine/store/expression_index.py candidates → rank\n"
                           "IVF-SQ8 (faiss) → bfloat16 → float32 exact"),
    ("store", "11  records", "mien/engine/store/reads.py hit_records_in\n"
                             "source, time, box, person (+ thumbnail)"),
]
REPLY = [
    (10.1, "hits: face id, distance,\nrecord"),
    (6.5, "SearchResponse\n(hit_messages.py add_hits)"),
    (3.0, "reply bytes, status,\ngoogle.rpc.Status"),
    (0.5, "from_proto.py →\nSearchResult dataclasses"),
]
LANES = {  # colour, label
    "client": ("#e3f0fb", "client process"),
    "wire": ("#fff4d6", "gRPC C++"),
    "server": ("#e6f5e6", "mien serve: Python"),
    "store": ("#f3e8fa", "the store (in the server)"),
}


def draw(out: Path, png: bool) -> None:
    n = len(STEPS)
    fig, ax = plt.subplots(figsize=(8.6, 10.6))
    ax.set_xlim(0, 13.6)
    ax.set_ylim(-0.4, n + 0.4)
    ax.invert_yaxis()
    ax.axis("off")
    box_x, box_w, box_h = 1.1, 7.6, 0.8

    # lanes behind the boxes
    i = 0
    while i < n:
        lane = STEPS[i][0]
        j = i
        while j < n and STEPS[j][0] == lane:
            j += 1
        colour, label = LANES[lane]
        ax.add_patch(FancyBboxPatch((0.15, i - 0.05), 13.3, j - i - 0.02, boxstyle="round,pad=0.02,rounding_size=0.12",
                                    facecolor=colour, edgecolor="none", zorder=0))
        ax.text(0.3, (i + j) / 2, label, rotation=90, va="center", ha="left", fontsize=9,
                color="#444", zorder=1)
        i = j

    for k, (_, title, files) in enumerate(STEPS):
        y = k + 0.5
        ax.add_patch(FancyBboxPatch((box_x, y - box_h / 2), box_w, box_h, boxstyle="round,pad=0.02,rounding_size=0.1",
                                    facecolor="white", edgecolor="#555", linewidth=1.0, zorder=2))
        ax.text(box_x + 0.15, y - 0.2, title, fontsize=11, fontweight="bold", va="center", zorder=3)
        ax.text(box_x + 0.15, y + 0.14, files, fontsize=8.2, va="center", family="monospace",
                linespacing=1.25, zorder=3)
        if k + 1 < n:
            ax.add_patch(FancyArrowPatch((box_x + 0.9, y + box_h / 2), (box_x + 0.9, y + 1 - box_h / 2),
                                         arrowstyle="-|>", mutation_scale=11, color="#1f5fa8", lw=1.4, zorder=2))

    # the reply: one arrow up the right-hand side, with what travels at each stage
    ax.add_patch(FancyArrowPatch((box_x + box_w + 0.35, n - 0.3), (box_x + box_w + 0.35, 0.2),
                                 arrowstyle="-|>", mutation_scale=14, color="#b5532a", lw=1.8, zorder=2))
    ax.text(box_x + box_w + 0.5, n - 0.3, "reply", color="#b5532a", fontsize=10, fontweight="bold",
            va="center", zorder=3)
    for y, what in REPLY:
        ax.text(box_x + box_w + 0.5, y, what, color="#7a3518", fontsize=8.6, va="center", wrap=True, zorder=3)
    ax.text(box_x + 0.3, 0.04, "request", color="#1f5fa8", fontsize=10, fontweight="bold", va="center", ha="right")
    # HTTP enters at the servicer: the same method object, an HTTP stand-in for the call context
    ax.add_patch(FancyArrowPatch((box_x + box_w + 2.6, 4.15), (box_x + box_w, 4.35), arrowstyle="-|>",
                                 mutation_scale=11, color="#2e7d32", lw=1.2, linestyle="--", zorder=2))
    ax.text(box_x + box_w + 0.5, 3.75, "HTTP JSON: mien/web/httpd.py\n→ webapp.py → gateway.py\n(call_bridge.py)",
            color="#2e7d32", fontsize=8.6, va="center", zorder=3)
    ax.set_title("Life of a search: SearchExpression from client to FAISS and back", fontsize=12, pad=6)

    fig.tight_layout()
    plt.rcParams["svg.fonttype"] = "path"
    fig.savefig(out, format="svg", metadata={"Date": None})
    if png:
        fig.savefig(out.with_suffix(".png"), dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    draw(HERE / "life-of-a-search.svg", "--png" in sys.argv)
