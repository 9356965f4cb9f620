"""The `failmodes` command line: thin typer commands that parse, build a config and call
the library. Every command takes ``--out DIR`` for what it writes.

One module per group of commands; this file registers them, in the order ``--help``
lists them.
"""
from . import analyses, catalog, estimate, images, pipeline, runs
from ._app import DATA_HELP, app, fail, main

for _command in (catalog.models, catalog.stressors, images.corrupt, pipeline.train,
                 pipeline.evaluate, analyses.analyze, images.probe, analyses.calibrate,
                 analyses.cam, analyses.slices, runs.run, runs.report, runs.compare,
                 estimate.estimate):
    app.command()(_command)

__all__ = ["DATA_HELP", "app", "fail", "main"]
