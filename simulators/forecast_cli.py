"""``gridmesh forecast``: train the edge forecasters, or evaluate the bundled ones."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gridmesh.cli import UsageError

EXAMPLE = """examples:
  gridmesh forecast train                      # into edge/models (the models agents load)
  gridmesh forecast train --out /tmp/models --feeder 1-LV-semiurb4--0-sw
  gridmesh forecast evaluate                   # held-out skill of the bundled models, as JSON
"""


def add_commands(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("forecast", help="train or evaluate the edge's ONNX forecasters",
                            description="Train the load and PV forecasters on the bundled SimBench "
                            "profiles and export them as ONNX, or evaluate them on the held-out week.",
                            epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="forecast_verb", metavar="ACTION", required=True)
    train = verbs.add_parser("train", help="train, evaluate and export both models",
                             description="Train both models, evaluate them on the held-out week and "
                             "export them as ONNX.", epilog=EXAMPLE,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--out", type=Path, help="folder for load.onnx and pv.onnx (default edge/models)")
    train.add_argument("--feeder", default="", help="a bundled feeder (default the default one)")
    train.set_defaults(handler=run_train)
    evaluate = verbs.add_parser("evaluate", help="the models' skill on the held-out week, as JSON",
                                description="Report the models' skill on the held-out week.",
                                epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("--models", type=Path,
                          help="folder with load.onnx and pv.onnx (default edge/models)")
    evaluate.add_argument("--feeder", default="", help="a bundled feeder (default the default one)")
    evaluate.set_defaults(handler=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from edge.onnx_forecaster import MODELS_DIR
    from simulators.forecast_train import train_all

    try:
        report = train_all(args.out or MODELS_DIR, args.feeder)
    except (ValueError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    print(json.dumps(report))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from edge.onnx_forecaster import MODELS_DIR
    from simulators.forecast_train import evaluate, samples
    from simulators.profiles import ProfileSet

    folder = args.models or MODELS_DIR
    try:
        profiles = ProfileSet.load_bundled(args.feeder)
        report = {}
        for kind in ("load", "pv"):
            model = onnx.load(folder / f"{kind}.onnx")
            arrays = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in model.graph.initializer}
            report[kind] = evaluate(arrays["W"], arrays["b"], samples(profiles, kind, held_out=True))
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"{folder}: {exc}") from None
    print(json.dumps(report))
    return 0
