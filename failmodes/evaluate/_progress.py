"""Progress over cells and images: a rich bar on a terminal, one plain line per cell otherwise."""
from __future__ import annotations

import sys
import time


def _fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """``mode``: "auto" (rich on a TTY, plain lines otherwise), "rich", "plain" or "off".

    ``total_images`` counts model-images (images × models) over the whole run, so images/s
    and the ETA cover the run, not just the cell in flight.
    """

    def __init__(self, total_cells: int, total_images: int, mode: str | bool = "auto"):
        if mode is True:
            mode = "auto"
        if mode is False:
            mode = "off"
        if mode == "auto":
            mode = "rich" if sys.stderr.isatty() else "plain"
        self.mode = mode
        self.total_cells, self.total_images = total_cells, max(total_images, 1)
        self.done_cells, self.done_images = 0, 0
        self.t0 = time.perf_counter()
        self._rich = None
        if mode == "rich" and total_cells:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress
            self._rich = RichProgress(
                TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[ips]:>8} img/s"), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False)
            self._cells = self._rich.add_task("cells", total=total_cells, ips="")
            self._imgs = self._rich.add_task("images", total=self.total_images, ips="")
            self._rich.start()

    def _ips(self) -> float:
        return self.done_images / max(time.perf_counter() - self.t0, 1e-9)

    def start_cell(self, label: str) -> None:
        if self._rich is not None:
            self._rich.update(self._cells, description=f"cell {label}")

    def advance_images(self, n: int) -> None:
        self.done_images += n
        if self._rich is not None:
            self._rich.update(self._imgs, advance=n, ips=f"{self._ips():.0f}")

    def end_cell(self, label: str, n_cells: int, status: str = "") -> None:
        self.done_cells += n_cells
        if self._rich is not None:
            self._rich.update(self._cells, advance=n_cells)
        elif self.mode == "plain":
            ips = self._ips()
            eta = (self.total_images - self.done_images) / ips if ips > 0 else float("inf")
            print(f"[{self.done_cells}/{self.total_cells}] {label}{status}  "
                  f"{ips:.0f} img/s  ETA {_fmt_eta(eta)}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
