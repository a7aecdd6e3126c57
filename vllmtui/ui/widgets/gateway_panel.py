"""The Gateway tab: the box's one OpenAI endpoint (`vllmtui gateway status`, on screen).

The panel reads the gateway's status in its own worker (`gateway_status`: its tmux session,
/health and /gateway/state, so never on the UI thread), every `POLL_SHOWN` s while the tab
is shown and every `POLL_HIDDEN` s otherwise, and posts each reading up as
`GatewayPanel.StatusRead` (the header's gateway segment: `gateway_segment`). `up()` (key g)
and `down()` (key G, after a confirmation) run `gateway_up` / `gateway_down` in a worker and
say how it went in a notification. The rendering is pure (`gateway_text`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import var
from textual.widgets import Static
from textual.worker import get_current_worker

from vllmtui.core.errors import VllmtuiError
from vllmtui.core.settings import Settings
from vllmtui.gateway import manage
from vllmtui.gateway.manage import GatewayStatus
from vllmtui.ui.format import STATE_STYLES, fmt_uptime
from vllmtui.ui.screens.dialogs import ConfirmDialog
from vllmtui.ui.widgets.body import update_body
from vllmtui.ui.work import worker

# The poll intervals (Settings has no gateway fields yet: the domain's settings are not the UI's to add)
POLL_SHOWN = 2.0
"""Seconds between gateway readings while the Gateway tab is shown."""
POLL_HIDDEN = 10.0
"""Seconds between gateway readings otherwise (the header's segment)."""
EVENTS_SHOWN = 10
Reader = Callable[[Settings], GatewayStatus]

GATEWAY_STYLES = {
    "up": "bold green",
    "starting": "yellow",
    "unresponsive": "bold red",
    "dead": "bold red",
    "down": "dim",
    "unknown": "bold red",
}


@dataclass(frozen=True)
class GatewayReading:
    """One reading: the gateway's status and whether gateway.yaml is written."""

    status: GatewayStatus
    configured: bool = False


def read_gateway(settings: Settings, reader: Reader | None = None) -> GatewayReading:
    """The gateway's status, a failure turned into a status that says what failed."""
    try:
        status = (reader or manage.gateway_status)(settings)
    except Exception as exc:  # noqa: BLE001 - a poll must never raise into the UI
        status = GatewayStatus("unknown", "", detail=_failure("reading the gateway", exc))
    path = status.config_path
    try:
        configured = path is not None and path.is_file()
    except OSError:
        configured = False
    return GatewayReading(status, configured)


def _failure(what: str, exc: Exception) -> str:
    """A user's message as it is (UsageError, VllmtuiError); anything else named."""
    if isinstance(exc, VllmtuiError):
        return str(exc)
    return f"{what} failed: {type(exc).__name__}: {exc}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _port(url: str) -> str:
    try:
        port = urlsplit(url).port
    except ValueError:
        return url
    return f":{port}" if port else url


def gateway_segment(reading: GatewayReading | None) -> Text | None:
    """The header's gateway segment ('gateway: up :8080 3 models'); None for a machine with
    no gateway (not running, gateway.yaml not written) and before the first reading."""
    if reading is None:
        return None
    status = reading.status
    if status.state == "down" and not reading.configured:
        return None  # its problems (two profiles serving one model name...) are the tab's to say
    out = Text("gateway: ")
    out.append(status.state, style=GATEWAY_STYLES.get(status.state, "bold red"))
    if status.state in ("up", "starting", "unresponsive") and status.url:
        out.append(f" {_port(status.url)}")
    if status.state == "up":
        out.append(f" {_plural(len(status.models), 'model')}")
    if status.problems:
        out.append(f" ({_plural(len(status.problems), 'problem')})", style="bold red")
    return out


COLUMNS: tuple[tuple[str, str, int], ...] = (
    # key, heading, width (negative: right-aligned)
    ("model", "MODEL", 24),
    ("profile", "PROFILE", 16),
    ("state", "STATE", 12),
    ("managed", "GW", 2),
    ("requests", "REQ", -6),
    ("errors", "ERR", -5),
    ("starts", "STARTS", -6),
    ("wakes", "WAKES", -5),
    ("restarts", "RESTARTS", -8),
    ("idle", "IDLE", 10),
    ("ttfb_mean_ms", "TTFB ms", -8),
)


def _cell(model: dict[str, Any], key: str) -> str:
    value = model.get(key)
    if key == "managed":
        return "gw" if value else ""
    if key == "state":
        return f"{value or '?'}{'...' if model.get('pending') else ''}"
    if key == "ttfb_mean_ms":
        return "-" if value is None else f"{float(value):.0f}"
    if value is None:
        return "-" if key in ("requests", "errors", "starts", "wakes", "restarts") else ""
    return str(value)


def _fit(text: str, width: int) -> str:
    size = abs(width)
    if len(text) > size:
        text = text[: size - 1] + "~"
    return f"{text:>{size}}" if width < 0 else f"{text:<{size}}"


def _models_block(out: Text, models: tuple[dict[str, Any], ...]) -> None:
    out.append(" ".join(_fit(heading, width) for _key, heading, width in COLUMNS) + "\n", style="bold")
    indent = " " * (abs(COLUMNS[0][2]) + 1)
    for model in models:
        state = str(model.get("state") or "")
        for i, (key, _heading, width) in enumerate(COLUMNS):
            out.append(" " if i else "")
            style = STATE_STYLES.get(state, "") if key == "state" else ""
            out.append(_fit(_cell(model, key), width), style=style)
        out.append("\n")
        detail = str(model.get("detail") or "")
        if detail and state not in ("ready", "stopped"):
            out.append(f"{indent}{detail[:90]}\n", style="dim")
        last_error = str(model.get("last_error") or "")
        if last_error:
            out.append(f"{indent}last error: {last_error[:80]}\n", style="red")
    out.append("GW: started by the gateway (it may sleep, stop or swap it out)\n", style="dim")


def _head(out: Text, status: GatewayStatus, now: Callable[[], float]) -> None:
    """The state line (state, uptime, URL, pid), what the state means and what to press."""
    out.append("gateway  ", style="bold")
    out.append(status.state, style=GATEWAY_STYLES.get(status.state, "bold red"))
    if status.state == "up" and status.started is not None:
        out.append(f" for {fmt_uptime(max(0.0, now() - status.started))}")
    if status.url:
        out.append(f"   {status.url}", style="bold cyan")
    if status.pid:
        out.append(f"   pid {status.pid}")
    out.append("\n")
    if status.detail:
        out.append(f"         {status.detail}\n", style="dim" if status.state in ("down", "up") else "red")
    if status.state == "down":
        out.append("         press g to start it here\n", style="yellow")
    elif status.state in ("dead", "unresponsive"):
        out.append("         press g to start it again (G ends what is left of it)\n", style="yellow")


def gateway_text(reading: GatewayReading | None, pending: str | None = None,
                 now: Callable[[], float] = time.time) -> Text:
    """What the tab shows, as one Rich Text (pure but for the uptime's clock)."""
    out = Text()
    if pending:
        out.append(f"{pending}\n", style="yellow")
    if reading is None:
        out.append("reading the gateway...\n", style="dim")
        return out
    status = reading.status
    _head(out, status, now)
    if status.config_path is not None:
        note = "" if reading.configured else "  (not written: the defaults)"
        out.append(f"config   {status.config_path}{note}\n", style="dim")
    if status.problems:
        out.append("\ngateway.yaml has problems (`gateway up` refuses it):\n", style="bold red")
        for problem in status.problems:
            out.append(f"  {problem}\n", style="red")
    if status.models:
        out.append("\n")
        _models_block(out, status.models)
    elif status.state == "up" and not status.detail:
        out.append("\nno models served: add profiles (or fix `profiles:` in gateway.yaml)\n", style="dim")
    if status.events:
        out.append("\nrecent events\n", style="bold")
        for line in status.events[-EVENTS_SHOWN:]:
            out.append(f"  {line}\n")
    return out


class GatewayPanel(VerticalScroll):
    """Shows the gateway's latest reading; with settings, takes the readings itself."""

    DEFAULT_CSS = "GatewayPanel { height: 1fr; padding: 0 1; } GatewayPanel > Static { width: 1fr; }"

    @dataclass
    class StatusRead(Message):
        """The gateway's status was read (the reading may say why there is none)."""

        reading: GatewayReading

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, GatewayPanel.StatusRead)

    @dataclass
    class ActionDone(Message):
        """`gateway up` or `down` finished: what to say, and whether it failed."""

        summary: str
        failed: bool = False

    shown: var[bool] = var(False, init=False)

    def __init__(self, settings: Settings | None = None, reader: Reader | None = None, *,
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.settings = settings
        self.reader = reader  # None: manage.gateway_status, looked up at each reading
        self.reading: GatewayReading | None = None
        self.pending: str | None = None  # "starting the gateway..." while g or G runs
        self._poke = threading.Event()
        self._closed = False

    def compose(self) -> ComposeResult:
        yield Static(gateway_text(None), id="gateway-body")

    def on_mount(self) -> None:
        if self.settings is not None:
            self.poll_gateway(self.settings)

    def on_unmount(self) -> None:
        self._closed = True
        self._poke.set()

    def watch_shown(self, shown: bool) -> None:
        if shown:
            self._poke.set()  # a fresh reading now
            self._refresh_view()

    @worker("reading the gateway", group="gateway", exclusive=True)
    def poll_gateway(self, settings: Settings) -> None:
        this = get_current_worker()
        while not this.is_cancelled and not self._closed:
            reading = read_gateway(settings, self.reader)
            if this.is_cancelled or self._closed:
                return
            self.post_message(self.StatusRead(reading))
            self._poke.wait(POLL_SHOWN if self.shown else POLL_HIDDEN)
            self._poke.clear()

    def on_gateway_panel_status_read(self, message: GatewayPanel.StatusRead) -> None:
        # not stopped: the screen's header shows the reading too
        self.reading = message.reading
        self._refresh_view()

    # ------------------------------------------------------------ keys

    def up(self) -> None:
        """Start the gateway (key g); a live one is left as it is."""
        if self.settings is None or self._busy():
            return
        self._set_pending("starting the gateway...")
        self.run_up(self.settings)

    def down(self) -> None:
        """Stop the gateway (key G), after a confirmation."""
        if self.settings is None or self._busy():
            return
        status = self.reading.status if self.reading else None
        if status is not None and status.state == "down":
            self.notify("the gateway is not running: g starts it")
            return
        where = f" at {status.url}" if status and status.url else ""
        pid = f" (pid {status.pid})" if status and status.pid else ""
        body = (f"The gateway{where}{pid} stops: its clients get no answer until g starts it again.\n"
                "The servers it started keep running (x stops one).")
        settings = self.settings

        def answered(yes: bool | None) -> None:
            if yes and not self._busy():
                self._set_pending("stopping the gateway...")
                self.run_down(settings)

        self.app.push_screen(ConfirmDialog("Stop the gateway?", body, yes="Stop"), answered)

    def _busy(self) -> bool:
        if self.pending:
            self.notify(f"still {self.pending}", severity="warning")
        return bool(self.pending)

    @worker("starting the gateway", group="gateway-action")
    def run_up(self, settings: Settings) -> None:
        try:
            status = manage.gateway_up(settings)
        except Exception as exc:  # noqa: BLE001 - said in a notification; the tab goes on
            self.post_message(self.ActionDone(_failure("starting the gateway", exc), failed=True))
            return
        finally:
            self._poke.set()
        models = _plural(len(status.models), "model")
        self.post_message(self.ActionDone(f"gateway up at {status.url} ({models})"))

    @worker("stopping the gateway", group="gateway-action")
    def run_down(self, settings: Settings) -> None:
        try:
            said = manage.gateway_down(settings)
        except Exception as exc:  # noqa: BLE001 - said in a notification; the tab goes on
            self.post_message(self.ActionDone(_failure("stopping the gateway", exc), failed=True))
            return
        finally:
            self._poke.set()
        self.post_message(self.ActionDone(said))

    def on_gateway_panel_action_done(self, message: GatewayPanel.ActionDone) -> None:
        message.stop()
        self._set_pending(None)
        self.notify(message.summary, severity="error" if message.failed else "information",
                    timeout=10 if message.failed else 5)
        self._poke.set()

    # ------------------------------------------------------------ rendering

    def _set_pending(self, text: str | None) -> None:
        self.pending = text
        self._refresh_view()

    def _refresh_view(self) -> None:
        if self.shown:  # hidden: catch up when shown
            self.show(self.reading)

    def show(self, reading: GatewayReading | None) -> None:
        """Render a reading."""
        self.reading = reading
        update_body(self, "gateway-body", gateway_text(reading, self.pending))
