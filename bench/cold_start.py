"""1. Indexing cold start: a fresh interpreter imports function_app and indexes it, against the
baseline app (one trivial Event Grid function on the same azure-functions). Median of fresh runs,
alternating app and baseline so that drift on the machine hits both."""

from __future__ import annotations

from bench.support import Figure, Lab, median, run_worker

TARGET = 1.3


def run(lab: Lab) -> list[Figure]:
    repetitions = lab.count(15, 3)
    run_worker("index"), run_worker("index", "--baseline")  # byte-compile and warm the page cache
    app, baseline = [], []
    for _ in range(repetitions):
        app.append(run_worker("index")["seconds"])
        baseline.append(run_worker("index", "--baseline")["seconds"])
    figure = Figure(
        "1 cold start", f"import function_app + app.get_functions(), median of {repetitions}",
        median(app) * 1000, "ms", median(baseline) * 1000, "baseline app", f"≤ {TARGET}×",
    )  # fmt: skip
    figure.met = figure.ratio <= TARGET
    return [figure]
