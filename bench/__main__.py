"""`python -m bench [NAME ...] [--quick]`: run the named benchmarks, or all of them."""

from __future__ import annotations

import argparse

from bench.harness import available, run_one


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {available()})")
    parser.add_argument("--quick", action="store_true", help="short runs, to check that they work")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(available()))
        return
    for name in args.names or available():
        run_one(name, quick=args.quick)


if __name__ == "__main__":
    main()
