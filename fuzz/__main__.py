"""`python -m fuzz COMMAND`: list the targets, run one under atheris, replay saved inputs, measure a corpus's
coverage, or run the whole campaign (`make fuzz`). See fuzz/__init__.py for the layout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the targets and what each checks")
    run = commands.add_parser("run", help="one target under atheris; other arguments go to libFuzzer")
    run.add_argument("target")
    replay = commands.add_parser("replay", help="run saved inputs (files or directories) without atheris")
    replay.add_argument("target")
    replay.add_argument("paths", nargs="+", type=Path)
    cover = commands.add_parser("coverage", help="coverage of a target's inputs")
    cover.add_argument("target")
    cover.add_argument("dirs", nargs="+", type=Path)
    cover.add_argument("--json", action="store_true", help="print JSON (what the campaign reads)")
    campaign = commands.add_parser("campaign", help="every target in parallel, then build/fuzz/report.json")
    campaign.add_argument("--seconds", type=int, default=300)
    campaign.add_argument("--runs", type=int, default=0,
                          help="stop a target after this many executions (default: only the time limit)")
    campaign.add_argument("--jobs", type=int, default=0, help="targets at a time (default: the number of cores)")
    campaign.add_argument("targets", nargs="*")
    args, rest = parser.parse_known_args(argv)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return dispatch(args, rest)


def dispatch(args: argparse.Namespace, rest: list[str]) -> int:
    if args.command == "list":
        from fuzz.registry import TARGETS  # noqa: PLC0415 (each command imports only what it needs)

        for target in TARGETS:
            print(f"{target.name:<16} {target.summary}")
        return 0
    if args.command == "run":
        from fuzz.runner import run  # noqa: PLC0415

        run(args.target, rest)
        return 0
    if args.command == "replay":
        from fuzz.registry import find  # noqa: PLC0415
        from fuzz.replay import inputs, replay  # noqa: PLC0415

        files = [p for p in args.paths if p.is_file()]
        count = replay(find(args.target), [*files, *inputs(p for p in args.paths if p.is_dir())])
        print(f"{args.target}: {count} inputs replayed, every property held")
        return 0
    if args.command == "coverage":
        return _coverage(args)
    from fuzz.campaign import main as campaign  # noqa: PLC0415

    return campaign(args.seconds, args.jobs, args.targets, args.runs)


def _coverage(args: argparse.Namespace) -> int:
    from fuzz.campaign import UNIT_COVERAGE  # noqa: PLC0415
    from fuzz.coverage_replay import measure, unit_test_figures  # noqa: PLC0415
    from fuzz.registry import find  # noqa: PLC0415

    target = find(args.target)
    count, figures = measure(target, args.dirs)
    unit = unit_test_figures(UNIT_COVERAGE, target)
    result = {"inputs": count, **{k: v.as_dict() for k, v in figures.items()},
              "unit_tests": {k: v.as_dict() for k, v in unit.items()} if unit is not None else None}
    if args.json:
        print(json.dumps(result))
    else:
        for name in ("package", "files"):
            figure = figures[name]
            print(f"{target.name} {name}: lines {figure.line_percent} %, branches {figure.branch_percent} %"
                  f" ({count} inputs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
