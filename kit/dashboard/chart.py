"""The counts-over-time chart as a PNG, drawn with matplotlib's Agg canvas (no pyplot).

Drawing on a ``Figure`` of its own keeps it safe in the dashboard's polling thread and leaves
the notebook's pyplot state alone.

Examples:
    >>> from datetime import UTC, datetime, timedelta
    >>> t0 = datetime(2026, 1, 31, 12, tzinfo=UTC)
    >>> png = counts_chart_png({"bottle": ([t0, t0 + timedelta(seconds=5)], [3, 2])})
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

MIN_SPAN_S = 60.0
"""The time axis spans at least this many seconds (a single payload sits in its middle)."""

SeriesMap = dict[str, tuple[list[datetime], list[int]]]


def counts_chart_png(
    series: SeriesMap,
    *,
    title: str = "",
    size_in: tuple[float, float] = (4.6, 1.9),
    dpi: int = 100,
) -> bytes:
    """A step chart of each series (count per payload over time, UTC) as PNG bytes.

    Args:
        series: name → (times, counts), as :meth:`CountHistory.series` gives.
        title: drawn at the top left.
        size_in: figure size in inches.
        dpi: pixels per inch.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=size_in, dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    drawn = False
    for name, (times, counts) in sorted(series.items()):
        if not times:
            continue
        axes.step(times, counts, where="post", label=name, linewidth=1.6)
        axes.plot(times, counts, "o", markersize=2.5, color=axes.lines[-1].get_color())
        drawn = True
    if drawn:
        moments = [moment for stamps, _ in series.values() for moment in stamps]
        start, end = min(moments), max(moments)
        if (end - start).total_seconds() < MIN_SPAN_S:
            half = timedelta(seconds=MIN_SPAN_S / 2)
            middle = start + (end - start) / 2
            start, end = middle - half, middle + half
        axes.set_xlim(start, end)
        axes.xaxis.set_major_locator(MaxNLocator(nbins=4))
        axes.xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))
        axes.legend(loc="upper left", fontsize=7, frameon=False, ncols=3)
        axes.set_ylim(bottom=0, top=max(1, max(max(c) for _, c in series.values() if c)) * 1.35)
    else:
        axes.text(0.5, 0.5, "no detections yet", ha="center", va="center", color="#757575")
        axes.set_xticks([])
    axes.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if title:
        axes.set_title(title, fontsize=8, loc="left")
    figure.tight_layout(pad=0.4)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
