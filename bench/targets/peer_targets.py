#!/usr/bin/python3
"""The Python peer of BM_Targets_Serve (DESIGN.md R9): torch.utils.data.DataLoader over an h5py
Dataset serving the same caches (medload-bench-targets-<S>.h5, built by medload_bench_targets),
image and label mask augmented together with cv2, batch 32, random order.

Per sample (__getitem__): read_direct of the image row (/images, uint8 [S,S]) and of the mask row
(/targets/masks, uint16 [S,S], deflated), one random flip + rotation + translation + scale as one
cv2.warpAffine of the image (linear) and of the mask (nearest, same matrix), then the intensity
operations of the augment peer's full chain (bench/augment/peer_augment.py: downsample, blur,
gamma, brightness/contrast, Poisson and Gaussian noise, every one at p = 1, the same ranges), then
float32 [1,S,S] normalized with the split's mean/std and the mask as int64 [1,S,S]. The default
collate stacks them into [32,1,S,S] float32 and int64.

Each DataLoader (0, 1, 2 workers; each worker and the main process limited to one OpenCV and one
torch thread) serves an untimed warm-up epoch with persistent workers, then --epochs timed epochs
(a fixed number of batches); samples/s, best of the worker counts kept. --profile adds the time
per sample of each step of __getitem__ and of the collation, measured in-process.
Prints JSON.

Usage: /usr/bin/python3 peer_targets.py [--dir D] [--sizes 224,512] [--workers 0,1,2]
       [--epochs 4] [--profile]
"""
import argparse
import json
import math
import os
import sys
import time

import cv2
import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.dataloader import default_collate

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "augment"))
import peer_augment  # noqa: E402  (the intensity operations, shared with the augment peer)

BATCH = 32
INTENSITY = [peer_augment.downsample, peer_augment.blur, peer_augment.gamma, peer_augment.brightness_contrast,
             peer_augment.poisson_noise, peer_augment.gaussian_noise]


def warp_matrix(size, rng):
    """Flip (p = 0.5) then rotation, translation and scale as medload's defaults draw them."""
    w = h = size
    angle = rng.uniform(-7, 7)
    scale = rng.uniform(0.95, 1.05)
    tx, ty = rng.uniform(-0.05, 0.05) * w, rng.uniform(-0.05, 0.05) * h
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -angle, scale)  # cv2: counter-clockwise
    m[0, 2] += tx
    m[1, 2] += ty
    if rng.random() < 0.5:  # mirror first: x -> w - 1 - x, composed into the one warp
        flip = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        m = m @ flip
    return m


class H5Segmentation(Dataset):
    def __init__(self, path, mean, std, epoch=0):
        self.path, self.mean, self.std, self.epoch = path, mean, std, epoch
        self.file = None
        with h5py.File(path, "r") as f:
            self.n, self.h, self.w = f["images"].shape

    def __len__(self):
        return self.n

    def open(self):
        if self.file is None:
            self.file = h5py.File(self.path, "r")
            self.images, self.masks = self.file["images"], self.file["targets/masks"]

    def read(self, i):
        self.open()
        img = np.empty((1, self.h, self.w), np.uint8)
        mask = np.empty((1, self.h, self.w), np.uint16)
        self.images.read_direct(img, np.s_[i:i + 1])
        self.masks.read_direct(mask, np.s_[i:i + 1])
        return img[0], mask[0]

    def warp(self, img, mask, rng):
        m = warp_matrix(self.w, rng)
        img = cv2.warpAffine(img, m, (self.w, self.h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=0)
        mask = cv2.warpAffine(mask, m, (self.w, self.h), flags=cv2.INTER_NEAREST,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return img, mask

    def intensity(self, img, rng):
        for fn in INTENSITY:
            img = fn(img, rng)
        return img

    def to_tensors(self, img, mask):
        x = torch.from_numpy(img).unsqueeze(0).float().div_(255.0).sub_(self.mean).div_(self.std)
        y = torch.from_numpy(mask.astype(np.int64)).unsqueeze(0)
        return x, y

    def __getitem__(self, i):
        rng = np.random.default_rng((self.epoch, i))  # per-sample, reproducible
        img, mask = self.read(i)
        img, mask = self.warp(img, mask, rng)
        img = self.intensity(img, rng)
        return self.to_tensors(img, mask)


def limit_threads(_=None):
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def stats(path):
    with h5py.File(path, "r") as f:
        g = f["splits/default"]
        return float(g.attrs["mean"][0]), float(g.attrs["std"][0])


def measure(path, mean, std, workers, epochs):
    ds = H5Segmentation(path, mean, std)
    loader = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers,
                        worker_init_fn=limit_threads if workers else None, persistent_workers=workers > 0)
    for x, y in loader:  # warm-up epoch: workers started, file open, page cache warm
        assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.shape[1:] == y.shape[1:]
    n = 0
    start = time.perf_counter()
    for _ in range(epochs):
        for x, _ in loader:
            n += x.shape[0]
    return n / (time.perf_counter() - start), n


def profile(path, mean, std, samples=128):
    """Microseconds per sample of each step, in-process (one thread), over `samples` samples."""
    ds = H5Segmentation(path, mean, std)
    ds.open()
    order = np.random.default_rng(0).permutation(ds.n)[:samples]
    steps = {"read image+mask (h5py)": 0.0, "warp image (linear)": 0.0, "warp mask (nearest)": 0.0,
             "intensity chain": 0.0, "to tensors (float norm, int64)": 0.0, "collate (stack)": 0.0}
    out = []
    for i in order:
        rng = np.random.default_rng((1, int(i)))
        t0 = time.perf_counter()
        img, mask = ds.read(int(i))
        t1 = time.perf_counter()
        m = warp_matrix(ds.w, rng)
        img = cv2.warpAffine(img, m, (ds.w, ds.h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        t2 = time.perf_counter()
        mask = cv2.warpAffine(mask, m, (ds.w, ds.h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
        t3 = time.perf_counter()
        img = ds.intensity(img, rng)
        t4 = time.perf_counter()
        out.append(ds.to_tensors(img, mask))
        t5 = time.perf_counter()
        for key, dt in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            steps[key] += dt
    t0 = time.perf_counter()
    for b in range(0, len(out), BATCH):
        default_collate(out[b:b + BATCH])
    steps["collate (stack)"] = time.perf_counter() - t0
    return {k: v / len(out) * 1e6 for k, v in steps.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.environ.get("MEDLOAD_BENCH_DIR", "/tmp"))
    ap.add_argument("--sizes", default="224,512")
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    limit_threads()
    out = {"torch": torch.__version__, "cv2": cv2.__version__, "h5py": h5py.__version__, "numpy": np.__version__,
           "batch": BATCH, "epochs": args.epochs, "sizes": {}}
    for size in args.sizes.split(","):
        path = os.path.join(args.dir, f"medload-bench-targets-{size}.h5")
        mean, std = stats(path)
        entry = {"workers": {}}
        for w in (int(x) for x in args.workers.split(",")):
            sps, n = measure(path, mean, std, w, args.epochs)
            entry["workers"][str(w)] = {"samples_per_second": sps, "samples": n}
        best = max(entry["workers"], key=lambda w: entry["workers"][w]["samples_per_second"])
        entry["best"], entry["best_workers"] = entry["workers"][best]["samples_per_second"], int(best)
        if args.profile:
            entry["profile_us"] = profile(path, mean, std)
        out["sizes"][size] = entry
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
