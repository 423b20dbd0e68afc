"""How the report's pages are laid out: page frames, text that flows onto further pages,
tables sized to their text, log axes. Drawing helpers only; no numbers are computed here.

- :func:`new_page` — an A4 landscape figure with its title and footer.
- :class:`Flow` — writes headings, wrapped text and tables down a page; whatever does not
  fit above the footer goes onto a continuation page ("… (continued)"), so no text is ever
  drawn off the page or over the footer. Each block's height is measured with the
  figure's renderer, not guessed.
- :func:`text_block` — lines written downwards from a point (a block that fits by
  construction, e.g. beside a panel).
- :func:`table` — a table whose columns are as wide as their longest cell, in a font that
  fits the axes' width, so no cell is cut.
- :func:`log_axes`, :func:`tick` — log–log axes with plain-number ticks.
- :func:`message`, :func:`wrap` — a sentence in place of a panel or page.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import LogLocator, NullFormatter

A4 = (11.69, 8.27)  # landscape, inches
#: where a page's content starts and ends (figure fraction): under the title, above the footer
TOP, BOTTOM = 0.93, 0.045
LEFT, RIGHT = 0.03, 0.97


def new_page(title: str, footer: str = ""):
    """An A4 landscape figure with ``title`` at the top and ``footer`` (and the time) below."""
    fig = plt.figure(figsize=A4)
    fig.suptitle(title, fontsize=14, weight="bold", x=0.03, ha="left", y=0.975)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    fig.text(0.03, 0.012, " · ".join(p for p in ("scalelab", footer, stamp) if p),
             fontsize=7, color="0.45")
    return fig


def message(fig_or_ax, text: str) -> None:
    """``text`` centred in place of an axes (or of a whole page)."""
    ax = fig_or_ax if hasattr(fig_or_ax, "axis") else fig_or_ax.add_axes([0.05, 0.1, 0.9, 0.8])
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11, color="0.25",
            transform=ax.transAxes)


def wrap(text: str, width: int = 45) -> str:
    """``text`` wrapped at ``width`` characters."""
    return "\n".join(textwrap.wrap(text, width))


def _renderer(fig):
    return fig.canvas.get_renderer()


_CHAR_WIDTH: dict = {}


def char_width(fig, size: float) -> float:
    """The mean width of a character of running text at ``size`` points, in figure fraction."""
    key = (size, fig.get_figwidth())
    if key not in _CHAR_WIDTH:
        sample = "the quick brown fox jumps over the lazy dog, N = 1.2e+05 (90% interval) "
        probe = fig.text(0, 0, sample * 2, fontsize=size)
        width = probe.get_window_extent(_renderer(fig)).width
        probe.remove()
        _CHAR_WIDTH[key] = width / len(sample * 2) / fig.bbox.width
    return _CHAR_WIDTH[key]


def text_height(fig, artist) -> float:
    """The drawn height of a text artist, in figure fraction."""
    return artist.get_window_extent(_renderer(fig)).height / fig.bbox.height


def text_block(fig, x: float, y: float, lines, size: float = 10, width: float | None = None,
               **kw) -> float:
    """Write ``lines`` from (x, y) downwards in figure coordinates, a line starting ``## ``
    as a heading, each wrapped to ``width`` (figure fraction; default: to the right margin);
    return the y under the last line."""
    width = (RIGHT - x) if width is None else width
    for i, line in enumerate(lines):
        heading = line.startswith("## ")
        if heading and i:
            y -= size / 72 / fig.get_figheight() * 0.6  # room above a heading
        y -= _write(fig, x, y, line[3:] if heading else line, size + (1 if heading else 0),
                    "bold" if heading else "normal", width, **kw)
    return y


def _write(fig, x, y, text, size, weight, width, **kw) -> float:
    chars = max(20, int(width / char_width(fig, size) * 0.97))
    wrapped = "\n".join(textwrap.fill(part, chars) for part in text.split("\n"))
    artist = fig.text(x, y, wrapped, fontsize=size, weight=weight, va="top", **kw)
    return text_height(fig, artist) + size / 72 / fig.get_figheight() * 0.45


#: The most rows a table on a page draws; the rest are counted in a last row (a table of
#: 50,000 runs would take minutes to draw and could not be read on one page anyway).
MAX_TABLE_ROWS = 30


def table(ax, frame: pd.DataFrame, size: float = 8, col_widths=None,
          max_rows: int = MAX_TABLE_ROWS) -> float:
    """Draw ``frame`` as a table filling the axes' width, each column as wide as its longest
    cell (or ``col_widths``), in ``size`` points or smaller where the columns need it, at
    most ``max_rows`` rows (the rest counted in the last); return the table's height as a
    fraction of the axes' height."""
    ax.axis("off")
    if frame.empty:
        return 0.0
    if len(frame) > max_rows:
        more = len(frame) - (max_rows - 1)
        frame = pd.concat([frame.iloc[:max_rows - 1].astype(str), pd.DataFrame(
            [[f"+{more:,} more"] + [""] * (frame.shape[1] - 1)], columns=frame.columns)])
    cells = frame.astype(str)
    fig = ax.figure
    longest = [max([len(str(c)) for c in cells[col]] + [len(str(col))]) + 2
               for col in cells.columns]
    total = sum(longest)
    axes_width = ax.get_position().width  # figure fraction
    fitted = axes_width / (total * char_width(fig, size) * 1.08)  # bold headers are wider
    size = max(5.0, min(size, size * fitted))
    if col_widths is None:
        col_widths = [n / total for n in longest]
    drawn = ax.table(cellText=cells.values, colLabels=[str(c) for c in cells.columns],
                     loc="upper center", cellLoc="center", colWidths=col_widths)
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(size)
    row_height = size / 72 * 1.9 / (ax.get_position().height * fig.get_figheight())
    for (row, _), cell in drawn.get_celld().items():
        cell.set_edgecolor("0.75")
        cell.set_height(row_height)
        if row == 0:
            cell.set_facecolor("0.92")
            cell.set_text_props(weight="bold")
    return row_height * (len(cells) + 1)


def table_height(rows: int, size: float = 8) -> float:
    """The height (inches) of a table of ``rows`` data rows drawn by :func:`table`."""
    return size / 72 * 1.9 * (rows + 1)


class Flow:
    """Headings, text and tables written down a page and onto continuation pages.

    ``new_page(title)`` makes a page (a figure with its title and footer); the flow's
    pages are ``flow.pages``, ``[(name, figure)]``, named ``name``, ``name_2``, ….
    """

    def __init__(self, title: str, name: str, new_page, top: float = TOP,
                 bottom: float = BOTTOM, left: float = LEFT, right: float = RIGHT):
        self.title, self.name, self._new_page = title, name, new_page
        self.top, self.bottom, self.left, self.right = top, bottom, left, right
        self.pages: list = []
        self._start_page()

    @property
    def fig(self):
        return self.pages[-1][1]

    def _start_page(self) -> None:
        n = len(self.pages) + 1
        title = self.title if n == 1 else f"{self.title} (continued, {n})"
        self.pages.append((self.name if n == 1 else f"{self.name}_{n}", self._new_page(title)))
        self.y = self.top

    def _line(self, size: float) -> float:
        return size / 72 / self.fig.get_figheight()

    def space(self, amount: float) -> None:
        """Leave ``amount`` of the page (figure fraction) empty, if the page has it."""
        self.y = max(self.bottom, self.y - amount)

    def text(self, lines, size: float = 10, indent: float = 0.0, **kw) -> None:
        """Write ``lines`` (``## `` starts a heading), wrapping each to the page's width and
        starting a new page wherever the next line would not fit; a heading keeps its
        next line with it."""
        lines = list(lines)
        for i, line in enumerate(lines):
            heading = line.startswith("## ")
            text = line[3:] if heading else line
            font = size + (1 if heading else 0)
            x = self.left + indent
            if heading and self.y < self.top:
                self.y -= self._line(size) * 0.6
            artist_height = self._place(x, text, font, "bold" if heading else "normal", kw,
                                        keep=(self._line(size) * 2.6 if heading
                                              and i + 1 < len(lines) else 0.0))
            self.y -= artist_height

    def _place(self, x, text, size, weight, kw, keep: float = 0.0) -> float:
        width = self.right - x
        chars = max(20, int(width / char_width(self.fig, size) * 0.97))
        wrapped = "\n".join(textwrap.fill(part, chars) or " " for part in text.split("\n"))
        artist = self.fig.text(x, self.y, wrapped, fontsize=size, weight=weight, va="top", **kw)
        height = text_height(self.fig, artist) + self._line(size) * 0.45
        if self.y - height - keep < self.bottom and self.y < self.top:
            artist.remove()  # onto the next page
            self._start_page()
            artist = self.fig.text(x, self.y, wrapped, fontsize=size, weight=weight, va="top",
                                   **kw)
        return height

    def table(self, frame: pd.DataFrame, size: float = 8, col_widths=None) -> None:
        """A table the page's width, on this page if its rows fit, else on the next; a table
        taller than a page is split over pages, its header repeated."""
        if frame.empty:
            return
        page_height = self.fig.get_figheight()
        room_rows = int((self.top - self.bottom) * page_height / (size / 72 * 1.9)) - 2
        for start in range(0, len(frame), max(room_rows, 1)):
            part = frame.iloc[start:start + max(room_rows, 1)]
            height = table_height(len(part), size) / page_height + 0.01
            if self.y - height < self.bottom and self.y < self.top:
                self._start_page()
            ax = self.fig.add_axes([self.left, self.y - height, self.right - self.left, height])
            table(ax, part, size=size, col_widths=col_widths)
            self.y -= height + 0.01


def log_axes(ax) -> None:
    """Log–log axes labelled in plain numbers where a range spans less than ~1.5 decades."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        axis.set_minor_formatter(NullFormatter())
        if lo > 0 and hi / lo < 30:
            axis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
            axis.set_major_formatter(matplotlib.ticker.FuncFormatter(tick))
    ax.grid(True, which="both", alpha=0.25)


def tick(value, _pos=None) -> str:
    """A tick label: 4,096 for whole numbers below 10⁶, else 3 significant digits."""
    if 1 <= value < 1e6 and float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"
