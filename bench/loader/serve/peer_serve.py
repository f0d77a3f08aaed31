#!/usr/bin/python3
"""Python peers of BM_Serve_Plain / BM_Serve_FirstBatch (DESIGN.md R4, R7).

Serves the same caches (medload-bench-serve-<S>.h5, written by medload_bench_serve) the way a
PyTorch user would: float32 [32,1,S,S] normalized with the stored training mean/std, random order,
batch 32.
  - dataloader_h5py: torch.utils.data.DataLoader over an h5py Dataset whose __getitem__ does one
    read_direct per sample (the file opened lazily in each worker); 0, 1 and 2 workers, best kept.
  - memmap: a numpy memmap of the same images (a .npy written beside the cache once), one fancy
    index per batch, converted with torch in the main process.
Throughput is measured on a warm epoch (workers persistent); time to first batch from creating
the dataset to holding the first batch. Prints JSON. --workers 0,2 and --no-memmap run a part
(compare.sh runs one worker count at a time under peak_memory.py for R7's memory figure).
"""
import argparse
import json
import os
import time

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

torch.set_num_threads(1)


class H5Images(Dataset):
    def __init__(self, path, mean, std):
        self.path, self.mean, self.std = path, mean, std
        self.file = None
        with h5py.File(path, "r") as f:
            self.n, self.h, self.w = f["images"].shape
            self.labels = f["labels"][:]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if self.file is None:
            self.file = h5py.File(self.path, "r")
            self.images = self.file["images"]
        out = np.empty((1, self.h, self.w), np.uint8)
        self.images.read_direct(out, np.s_[i:i + 1])
        x = torch.from_numpy(out).float().div_(255.0).sub_(self.mean).div_(self.std)
        return x, int(self.labels[i])


def stats(path):
    with h5py.File(path, "r") as f:
        g = f["splits/default"]
        return float(g.attrs["mean"][0]), float(g.attrs["std"][0])


def dataloader_epoch(loader):
    n = 0
    start = time.perf_counter()
    for x, _ in loader:
        n += x.shape[0]
    return n / (time.perf_counter() - start)


def run_dataloader(path, mean, std, workers, epochs):
    start = time.perf_counter()
    ds = H5Images(path, mean, std)
    loader = DataLoader(ds, batch_size=32, shuffle=True, num_workers=workers,
                        persistent_workers=workers > 0)
    it = iter(loader)
    next(it)
    first = time.perf_counter() - start
    for _ in it:
        pass
    best = max(dataloader_epoch(loader) for _ in range(epochs))
    return best, first


def run_memmap(path, mean, std, epochs):
    npy = path[:-3] + ".npy"
    if not os.path.exists(npy):
        with h5py.File(path, "r") as f:
            np.save(npy, f["images"][:])
    start = time.perf_counter()
    mm = np.load(npy, mmap_mode="r")
    n = mm.shape[0]

    def batches():
        perm = torch.randperm(n).numpy()
        for b in range(0, n, 32):
            idx = perm[b:b + 32]
            x = torch.from_numpy(mm[idx]).unsqueeze(1).float().div_(255.0).sub_(mean).div_(std)
            yield x

    it = batches()
    next(it)
    first = time.perf_counter() - start
    best = 0.0
    for _ in range(epochs):
        t = time.perf_counter()
        count = sum(x.shape[0] for x in batches())
        best = max(best, count / (time.perf_counter() - t))
    return best, first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.environ.get("MEDLOAD_BENCH_DIR", "/tmp"))
    ap.add_argument("--sizes", default="224,512")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workers", default="0,1,2", help="DataLoader worker counts to run")
    ap.add_argument("--no-memmap", action="store_true", help="skip the memmap peer")
    args = ap.parse_args()
    out = {"torch": torch.__version__, "h5py": h5py.__version__, "sizes": {}}
    for size in args.sizes.split(","):
        path = os.path.join(args.dir, f"medload-bench-serve-{size}.h5")
        mean, std = stats(path)
        entry = {"dataloader_h5py": {}}
        for workers in (int(w) for w in args.workers.split(",")):
            sps, first = run_dataloader(path, mean, std, workers, args.epochs)
            entry["dataloader_h5py"][str(workers)] = {"samples_per_second": sps, "first_batch_s": first}
        entry["dataloader_best"] = max(v["samples_per_second"] for v in entry["dataloader_h5py"].values())
        entry["dataloader_first_batch_s"] = min(v["first_batch_s"] for v in entry["dataloader_h5py"].values())
        if not args.no_memmap:
            sps, first = run_memmap(path, mean, std, args.epochs)
            entry["memmap"] = {"samples_per_second": sps, "first_batch_s": first}
        out["sizes"][size] = entry
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
