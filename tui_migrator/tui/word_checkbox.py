"""Check boxes that say their state in characters, `[x]` or `[ ]`, not in colour alone: Textual's
checkbox and selection list draw the same `▐X▌` on and off, unreadable in a 16-colour, monochrome
or NO_COLOR terminal."""

from __future__ import annotations

from rich.segment import Segment
from textual import events
from textual.content import Content
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList
from textual.widgets.option_list import OptionDoesNotExist


def box(checked: bool) -> str:
    return "[x]" if checked else "[ ]"


class WordCheckbox(Checkbox):
    @property
    def _button(self) -> Content:
        return Content(box(self.value))


class WordSelectionList(SelectionList[str]):
    """A selection list whose three-cell button reads `[x]` or `[ ]` (same cells, same styles),
    and whose first row is highlighted when it gets focus (else the first space does nothing)."""

    def on_focus(self, _event: events.Focus) -> None:
        if self.highlighted is None and self.option_count:
            self.highlighted = 0

    def render_line(self, y: int) -> Strip:
        line = super().render_line(y)
        segments = list(line)
        _, scroll_y = self.scroll_offset
        try:
            option = self.get_option_at_index(scroll_y + y)
        except OptionDoesNotExist:
            return line
        if len(segments) < 5:
            return line
        _left, inner, _right, gap, *rest = segments
        text = box(option.value in self.selected)
        # The brackets in the row's own style: the button's side style draws them in the
        # button's colour on the row's, which a 16-colour terminal can make one colour.
        return Strip(
            [
                Segment(text[0], gap.style),
                Segment(text[1], inner.style),
                Segment(text[2], gap.style),
                gap,
                *rest,
            ],
            line.cell_length,
        )
