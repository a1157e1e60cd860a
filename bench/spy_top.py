"""Summarise a py-spy raw (collapsed) profile: self and total share per function, per thread.

    .venv/bin/python bench/spy_top.py PROFILE.txt [--top 30]
"""

from __future__ import annotations

import argparse
from collections import Counter


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    own, total, threads = Counter(), Counter(), Counter()
    n = 0
    for line in open(args.file):
        stack, _, count = line.rstrip().rpartition(" ")
        c = int(count)
        frames = stack.split(";")
        n += c
        threads[frames[0]] += c
        own[frames[-1]] += c
        for f in set(frames[1:]):
            total[f] += c
    print(f"# {n} samples")
    for t, c in threads.most_common():
        print(f"thread {100 * c / n:5.1f}% {t}")
    print("# self")
    for f, c in own.most_common(args.top):
        print(f"{100 * c / n:5.1f}% {f}")
    print("# total")
    for f, c in total.most_common(args.top):
        print(f"{100 * c / n:5.1f}% {f}")


if __name__ == "__main__":
    main()
