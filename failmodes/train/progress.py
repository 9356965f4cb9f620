"""Training progress: a live bar per epoch on a terminal, plain log lines otherwise."""
from __future__ import annotations

import sys
import time


class Reporter:
    """A rich progress bar per epoch on a terminal; plain log lines otherwise (one per
    epoch plus one every ~30 s), so logs of batch jobs stay readable."""

    def __init__(self, epochs, steps, world, progress, active):
        self.epochs, self.steps, self.world, self.active = epochs, steps, world, active
        self.live = active and (sys.stderr.isatty() if progress is None else progress)
        self.bar = None
        self.t0 = self.last = 0.0

    def line(self, text: str) -> None:
        if self.active:
            if self.bar is not None:
                self.bar.console.print(text)
            else:
                print(text, file=sys.stderr, flush=True)

    def epoch_start(self, epoch: int) -> None:
        self.epoch = epoch
        self.t0 = self.last = time.perf_counter()
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
            self.bar = Progress(TextColumn(f"epoch {epoch + 1}/{self.epochs}"), BarColumn(),
                                MofNCompleteColumn(), TimeRemainingColumn(),
                                TextColumn("{task.fields[stats]}"), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("train", total=self.steps, stats="")

    def step(self, step, seen, loss_sum, correct) -> None:
        if not self.active:
            return
        now = time.perf_counter()
        # Reading the device accumulators syncs the GPU: at most twice a second.
        if now - self.last < (0.5 if self.live else 30.0) and step < self.steps:
            return
        self.last = now
        # Loss and accuracy of this process's images; speed of all processes together.
        stats = (f"{seen * self.world / (now - self.t0):6.0f} img/s  "
                 f"loss {float(loss_sum) / seen:.4f}  acc {float(correct) / seen:.4f}")
        if self.bar is not None:
            self.bar.update(self.task, completed=step, stats=stats)
        elif step < self.steps:
            print(f"epoch {self.epoch + 1}/{self.epochs} step {step}/{self.steps}  {stats}",
                  file=sys.stderr, flush=True)

    def epoch_done(self, row: dict) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        self.line(f"epoch {row['epoch']}/{self.epochs}  lr {row['lr']:.4g}  "
                  f"train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f}  "
                  f"test loss {row['test_loss']:.4f} acc {row['test_acc']:.4f}  "
                  f"{row['images_per_s']:.0f} img/s  {row['time_s']:.1f} s")
