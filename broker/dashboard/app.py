"""The terminal dashboard (textual): the panels of :mod:`broker.dashboard.panels` on screen.

:class:`LiveDashboard` shows a broker's community as messages come (``p`` pauses the
view while messages are still applied, so resuming shows the present);
:class:`PlaybackDashboard` steps through a finished run's frames (``left``/``right``,
``home``/``end``). Both filter by member (``f``; an empty filter shows everyone) and
quit with ``q``. Importing this module needs the ``dashboard`` extra.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import DataTable, Footer, Input, Static

from broker.dashboard.feed import LiveFeed
from broker.dashboard.panels import (
    DEVICE_COLUMNS,
    device_rows,
    feeder_lines,
    header_lines,
    market_lines,
    parse_filter,
    playback_source,
    rejection_lines,
)
from broker.dashboard.state import DashboardState, FeedItem, take

CSS = """
#header { background: $boost; padding: 0 1; margin-bottom: 1; }
#devices { height: auto; max-height: 60%; }
#market, #rejections { padding: 0 1; margin-top: 1; }
#filter { dock: bottom; }
#filter.hidden { display: none; }
"""


class DashboardView(App[None]):
    """What both dashboards share: the panels, the member filter and quitting."""

    CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "filter", "filter by member"), Binding("q", "quit", "quit"),
        Binding("escape", "close_filter", show=False)]

    def __init__(self, terms: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.terms = terms
        self._rows: list[tuple[str, ...]] = []  # the device rows on screen

    def compose(self) -> ComposeResult:
        yield Static(id="header")
        with VerticalScroll():
            yield DataTable(id="devices", zebra_stripes=True, cursor_type="row")
            yield Static(id="market")
            yield Static(id="rejections")
        yield Input(placeholder="member ids or parts of them, e.g. h001 h01 (empty: everyone)",
                    id="filter", classes="hidden")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#devices", DataTable).add_columns(*((name, name) for name in DEVICE_COLUMNS))
        self.show()

    def shown(self) -> tuple[DashboardState, str, bool]:
        """The state on screen, where it comes from, and whether the view is paused."""
        raise NotImplementedError

    def show(self) -> None:
        state, source, paused = self.shown()
        self.query_one("#header", Static).update("\n".join(header_lines(state, source, self.terms, paused)))
        self._show_devices(device_rows(state, self.terms))
        market = [*market_lines(state, self.terms), *feeder_lines(state, self.terms)]
        self.query_one("#market", Static).update("\n".join(market))
        self.query_one("#rejections", Static).update("\n".join(rejection_lines(state, self.terms)))

    def _show_devices(self, rows: list[tuple[str, ...]]) -> None:
        """Change only the cells that changed, so the table keeps its scroll and cursor; rebuild
        it when the devices shown change."""
        table = self.query_one("#devices", DataTable)
        if [row[0] for row in rows] != [row[0] for row in self._rows]:
            table.clear()
            for row in rows:
                table.add_row(*row, key=row[0])
        else:
            for row, before in zip(rows, self._rows, strict=True):
                for column, value, old in zip(DEVICE_COLUMNS, row, before, strict=True):
                    if value != old:
                        table.update_cell(row[0], column, value, update_width=True)
        self._rows = rows

    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.value = " ".join(self.terms)
        field.remove_class("hidden")
        field.focus()

    def action_close_filter(self) -> None:
        self.query_one("#filter", Input).add_class("hidden")
        self.query_one("#devices", DataTable).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.terms = parse_filter(event.value)
        self.action_close_filter()
        self.show()


class FeedArrived(Message):
    """Messages are waiting in the live dashboard's queue."""


class LiveDashboard(DashboardView):
    BINDINGS: ClassVar[list[BindingType]] = [*DashboardView.BINDINGS, Binding("p", "pause", "pause/resume")]

    def __init__(self, feed: LiveFeed, state: DashboardState, terms: tuple[str, ...] = ()) -> None:
        super().__init__(terms)
        self.feed = feed
        self.state = state
        self.frozen: DashboardState | None = None  # the state on screen while paused
        self.link = "connecting"
        self._items: queue.SimpleQueue[FeedItem] = queue.SimpleQueue()
        self._posted = threading.Event()

    def on_mount(self) -> None:  # after DashboardView's (textual calls each class's handler)
        self.feed.start(self._deliver, self._connection)

    def on_unmount(self) -> None:
        self.feed.stop()

    def shown(self) -> tuple[DashboardState, str, bool]:
        source = f"live on {self.feed.label} ({self.link})"
        return (self.frozen or self.state), source, self.frozen is not None

    # paho's thread: queue, and post one notice until the app has drained the queue
    def _deliver(self, item: FeedItem) -> None:
        self._items.put(item)
        if not self._posted.is_set():
            self._posted.set()
            self.post_message(FeedArrived())

    def _connection(self, what: str) -> None:
        self.link = what
        self.post_message(FeedArrived())

    def on_feed_arrived(self, _event: FeedArrived) -> None:
        self._posted.clear()
        while not self._items.empty():
            self.state = take(self.state, self._items.get())
        self.show()

    def action_pause(self) -> None:
        self.frozen = None if self.frozen is not None else self.state
        self.show()


class PlaybackDashboard(DashboardView):
    BINDINGS: ClassVar[list[BindingType]] = [
        *DashboardView.BINDINGS,
        Binding("left", "step(-1)", "slot before", priority=True),
        Binding("right", "step(1)", "next slot", priority=True),
        Binding("home", "jump(0)", "first", priority=True), Binding("end", "jump(-1)", "last", priority=True)]

    def __init__(self, frames: Sequence[DashboardState], source: str, start: int = 0,
                 terms: tuple[str, ...] = ()) -> None:
        super().__init__(terms)
        if not frames:
            raise ValueError("playback needs at least one frame")
        self.frames = frames
        self.source = source
        self.index = start

    def shown(self) -> tuple[DashboardState, str, bool]:
        return self.frames[self.index], playback_source(self.source, self.index, len(self.frames)), False

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Stepping keys edit the filter while it is being typed."""
        return not (action in ("step", "jump") and self.query_one("#filter", Input).has_focus)

    def action_step(self, by: int) -> None:
        self.index = min(max(self.index + by, 0), len(self.frames) - 1)
        self.show()

    def action_jump(self, to: int) -> None:
        self.index = to % len(self.frames)
        self.show()
