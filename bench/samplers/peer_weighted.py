#!/usr/bin/python3
"""The peer of BM_Sampler_Weighted: torch.utils.data.WeightedRandomSampler (Debian python3-torch).

Prints one JSON object: ns per index at each N for
  - "sampler": iterating the sampler, as a DataLoader does (torch.multinomial + Python iteration);
  - "multinomial": torch.multinomial alone (the peer's best case: no per-index Python work);
and what happens at N = 2^24 + 1, where torch.multinomial refuses.
Run with /usr/bin/python3 (Debian's interpreter, which has torch).
"""
import argparse
import json
import time

import torch
from torch.utils.data import WeightedRandomSampler


def best_of(repeats, fn):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    result = {"torch": torch.__version__, "threads": 1, "sizes": {}}
    for n in [int(s) for s in args.sizes.split(",")]:
        weights = torch.rand(n, dtype=torch.double)
        entry = {}
        try:
            sampler = WeightedRandomSampler(weights, num_samples=n, replacement=True)

            def iterate():
                for _ in sampler:
                    pass

            entry["sampler_ns_per_index"] = best_of(args.repeats, iterate) * 1e9 / n
            entry["multinomial_ns_per_index"] = (
                best_of(args.repeats, lambda: torch.multinomial(weights, n, replacement=True)) * 1e9 / n)
        except RuntimeError as error:
            entry["error"] = str(error).splitlines()[0]
        result["sizes"][str(n)] = entry
    # Beyond 2^24 categories torch.multinomial (and so the sampler) refuses.
    n = 2**24 + 1
    try:
        sampler = WeightedRandomSampler(torch.ones(n, dtype=torch.double), num_samples=10, replacement=True)
        list(sampler)
        result["at_2^24+1"] = "ok"
    except RuntimeError as error:
        result["at_2^24+1"] = "fails: " + str(error).splitlines()[0]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
