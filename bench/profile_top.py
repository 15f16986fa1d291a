"""Summarise py-spy raw (collapsed) stacks: the functions with the most samples, self and
inclusive. `python -m bench.profile_top DIR/dm-max-nexus.txt [--filter nexus_chat] [-n 30]`"""
from __future__ import annotations

import argparse
from collections import Counter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("-n", type=int, default=30)
    parser.add_argument("--filter", default="", help="only frames whose text contains this")
    args = parser.parse_args()
    self_c: Counter = Counter()
    incl: Counter = Counter()
    total = 0
    for line in open(args.file):
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        self_c[frames[-1]] += n
        for frame in set(frames):
            if args.filter in frame:
                incl[frame] += n
    print(f"{total} samples")
    print("\n== self ==")
    for frame, n in self_c.most_common(args.n):
        print(f"{100 * n / total:5.1f}%  {frame}")
    print("\n== inclusive ==")
    for frame, n in incl.most_common(args.n):
        print(f"{100 * n / total:5.1f}%  {frame}")


if __name__ == "__main__":
    main()
