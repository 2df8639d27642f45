"""The flow: each step one function over one run directory (the CLI and ``nas demo`` are
thin layers over these).

1. :func:`train` a supernet; :func:`load_supernet` rebuilds it;
2. :func:`collect_samples` measures random subnets through it;
3. :func:`fit_predictor` fits a predictor of a metric on the samples;
4. :func:`build_profile` / :func:`validate_profile` / :func:`import_profile` /
   :func:`measure_profile` make device latency profiles;
5. :func:`search_run` searches every device profile (:func:`latency_limits` sets limits);
6. :func:`export_chosen` exports each profile's chosen subnets;
7. :func:`write_report` writes ``report.html`` / ``report.md``.

Example:
    >>> from nas import flow
    >>> flow.train("runs/tiny", "tiny", config=nas.TrainConfig(epochs=2))
    >>> flow.collect_samples("runs/tiny", n=50)
    >>> flow.fit_predictor("runs/tiny")
    >>> flow.measure_profile("runs/tiny", "here", n=20, timing=flow.Timing(num_classes=10))
    >>> results = flow.search_run("runs/tiny", ["here"], DevicePlan(budget=100))
    >>> flow.export_chosen("runs/tiny", results=results)
    >>> flow.write_report("runs/tiny")
"""

from __future__ import annotations

from nas.flow.export import export_chosen, load_search
from nas.flow.predictors import FitReport, fit_predictor
from nas.flow.profiles import (
    DeviceInfo,
    Timing,
    build_profile,
    import_profile,
    measure_profile,
    validate_profile,
)
from nas.flow.samples import collect_samples
from nas.flow.search import latency_limits, search_run
from nas.flow.train import load_supernet, train
from nas.report import write_report

__all__ = [
    "DeviceInfo",
    "FitReport",
    "Timing",
    "build_profile",
    "collect_samples",
    "export_chosen",
    "fit_predictor",
    "import_profile",
    "latency_limits",
    "load_search",
    "load_supernet",
    "measure_profile",
    "search_run",
    "train",
    "validate_profile",
    "write_report",
]
