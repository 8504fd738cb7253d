"""What differs between an accepted snapshot and the picture a run took, said in text.

A snapshot mismatch on CI leaves only "assert False" and an HTML report on a machine that is
gone. The screen's text, line by line, and which lines changed colour, printed with the
failure, are enough to tell a real change from a picture taken mid-repaint.
"""

from __future__ import annotations

import difflib
import html
import re
from collections import defaultdict

# Rich's SVG export: one <text> per run of equally styled characters, clipped to its line; the
# class names carry an export-specific number (terminal-123-r4) that normalised copies lack.
_TEXT = re.compile(
    r'<text class="terminal-(?:\d+-)?(r\d+)" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
    r'clip-path="url\(#terminal-(?:\d+-)?line-(\d+)\)">([^<]*)</text>'
)
_STYLE = re.compile(r"\.terminal-(?:\d+-)?(r\d+) \{ ([^}]*) \}")
_BACKGROUND = re.compile(r'<rect fill="(#[0-9a-fA-F]+)" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"')


# Every cell is this wide in Rich's export; text runs are placed at a cell's x, blank cells are
# often left out, so a line is rebuilt by position.
_CELL_WIDTH = 12.2


def _placed(runs: list[tuple[float, str]]) -> str:
    cells: list[str] = []
    for x, characters in sorted(runs):
        column = round(x / _CELL_WIDTH)
        cells.extend(" " * (column - len(cells)))
        cells[column:] = characters.replace("\xa0", " ").rstrip("\n")
    return "".join(cells).rstrip()


def screen_lines(svg: str) -> tuple[list[str], list[str]]:
    """The screen's text, a string per line, and per line a signature of its colours (the
    styles of its runs of text and its background cells, in order)."""
    styles = dict(_STYLE.findall(svg))
    text: dict[int, list[tuple[float, str]]] = defaultdict(list)
    colours: dict[int, list[str]] = defaultdict(list)
    for style, x, line, characters in _TEXT.findall(svg):
        text[int(line)].append((float(x), html.unescape(characters)))
        colours[int(line)].append(f"{x}:{styles.get(style, style)}")
    rows: dict[float, list[str]] = defaultdict(list)
    for fill, x, y, width in _BACKGROUND.findall(svg):
        rows[float(y)].append(f"{x}+{width}:{fill}")
    backgrounds = [rows[y] for y in sorted(rows)]
    count = max([*text, *colours, -1]) + 1
    lines = [_placed(text[n]) for n in range(count)]
    signatures = [
        " ".join(colours[n]) + " | " + " ".join(backgrounds[n] if n < len(backgrounds) else [])
        for n in range(count)
    ]
    return lines, signatures


def described_difference(accepted: str, taken: str) -> str:
    """The text lines that differ (a unified diff), or, when the text is the same, the lines
    whose colours differ."""
    accepted_lines, accepted_colours = screen_lines(accepted)
    taken_lines, taken_colours = screen_lines(taken)
    if accepted_lines != taken_lines:
        diff = difflib.unified_diff(accepted_lines, taken_lines, "accepted", "taken", lineterm="", n=1)
        return "The screen's text differs:\n" + "\n".join(diff)
    recoloured = [
        n for n, (was, now) in enumerate(zip(accepted_colours, taken_colours, strict=False)) if was != now
    ]
    if recoloured:
        shown = "\n".join(f"  line {n}: {accepted_lines[n]}" for n in recoloured)
        return f"Same text; colours differ on {len(recoloured)} line(s):\n{shown}"
    return "Same text and colours line by line: the difference is elsewhere in the SVG."
