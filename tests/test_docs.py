"""Every verb of the command line is documented in the README, with an example in its help."""

from __future__ import annotations

import argparse
from pathlib import Path

from gridmesh.cli import build_parser

README = (Path(__file__).parent.parent / "README.md").read_text()


def verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
                if nested:
                    for child, subsub in nested[0].choices.items():
                        found[f"{name} {child}"] = subsub
                else:
                    found[name] = sub
    return found


def test_there_are_verbs() -> None:
    assert {"testbed", "broker", "monitor", "coordinator", "agent", "ledger audit"} <= set(verbs())


def test_every_verb_is_in_the_readme_with_an_example() -> None:
    for verb, parser in verbs().items():
        assert f"`{verb}`" in README, f"README does not document `{verb}`"
        assert f"gridmesh {verb}" in README, f"README has no example of `gridmesh {verb}`"
        assert f"gridmesh {verb}" in (parser.epilog or ""), f"`{verb}` --help has no example"


def test_the_readme_names_the_two_commands() -> None:
    assert "make testbed" in README and "make test" in README
