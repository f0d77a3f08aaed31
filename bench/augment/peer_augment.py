#!/usr/bin/python3
"""The Python peer of medload's augmentation benchmark: torch.utils.data.DataLoader over an
in-memory uint8 dataset, applying the same operations per sample with cv2, numpy and
torchvision.transforms.functional, batch 32, 1-channel S x S images. Prints JSON with samples/s
per (operation, size, workers); `best` is the best of the worker counts (DESIGN.md R2/R3).

Usage: /usr/bin/python3 peer_augment.py [--sizes 224,512] [--ops Affine,...,FullChain]
       [--workers 0,1,2] [--seconds 1.5]
Each worker (and the main process) is limited to one OpenCV and one torch thread, so that
W workers use W cores, as medload's <threads> does.
"""
import argparse
import json
import math
import time

import cv2
import numpy as np
import torch
import torchvision.transforms.functional as F
from torch.utils.data import DataLoader, Dataset

BATCH = 32
POOL = 64  # distinct images in memory; index i reads image i % POOL
OPS = ["Affine", "Gamma", "BrightnessContrast", "GaussianNoise", "PoissonNoise", "Blur", "Downsample", "FullChain"]


def make_images(size):
    u = np.arange(size, dtype=np.float64)[None, :] / size
    v = np.arange(size, dtype=np.float64)[:, None] / size
    out = np.empty((POOL, size, size), dtype=np.uint8)
    for b in range(POOL):
        value = 90 + 60 * np.sin(6 * u + b) * np.cos(5 * v) + 25 * np.sin(40 * u * v)
        value = np.where(np.abs(u - 0.5) < 0.04, 220.0, value)
        out[b] = np.clip(value, 0, 255).astype(np.uint8)
    return out


# The same parameter ranges as medload's defaults (AugmentOptions), every operation at p = 1.
def affine(img, rng):
    h, w = img.shape
    angle = rng.uniform(-7, 7)
    scale = rng.uniform(0.95, 1.05)
    tx, ty = rng.uniform(-0.05, 0.05) * w, rng.uniform(-0.05, 0.05) * h
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), -angle, scale)  # cv2: counter-clockwise
    m[0, 2] += tx
    m[1, 2] += ty
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def gamma(img, rng):
    g = math.exp(rng.uniform(math.log(0.7), math.log(1.5)))
    lut = np.clip(np.power(np.arange(256) / 255.0, g) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


def brightness_contrast(img, rng):
    t = torch.from_numpy(img).unsqueeze(0)
    t = F.adjust_brightness(t, rng.uniform(0.9, 1.1))
    t = F.adjust_contrast(t, rng.uniform(0.9, 1.1))
    return t.squeeze(0).numpy()


def gaussian_noise(img, rng):
    sigma = rng.uniform(0, 0.02) * 255.0
    noisy = img.astype(np.float32) + rng.standard_normal(img.shape, dtype=np.float32) * sigma
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def poisson_noise(img, rng):
    photons = math.exp(rng.uniform(math.log(500), math.log(5000)))
    counts = rng.poisson(img.astype(np.float32) * (photons / 255.0))
    return np.clip(counts * (255.0 / photons) + 0.5, 0, 255).astype(np.uint8)


def blur(img, rng):
    sigma = rng.uniform(0.3, 1.0)
    k = 2 * math.ceil(3 * sigma) + 1
    return cv2.GaussianBlur(img, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)


def downsample(img, rng):
    h, w = img.shape
    f = rng.uniform(0.5, 0.9)
    small = cv2.resize(img, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


CHAIN = [affine, downsample, blur, gamma, brightness_contrast, poisson_noise, gaussian_noise]
SINGLE = {"Affine": [affine], "Gamma": [gamma], "BrightnessContrast": [brightness_contrast],
          "GaussianNoise": [gaussian_noise], "PoissonNoise": [poisson_noise], "Blur": [blur],
          "Downsample": [downsample], "FullChain": CHAIN}


class Augmented(Dataset):
    def __init__(self, images, op, length, epoch):
        self.images, self.fns, self.length, self.epoch = images, SINGLE[op], length, epoch

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        rng = np.random.default_rng((self.epoch, i))  # per-sample, reproducible
        img = self.images[i % POOL].copy()
        for fn in self.fns:
            img = fn(img, rng)
        return torch.from_numpy(img).unsqueeze(0)


def limit_threads(_=None):
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def measure(images, op, workers, seconds):
    # Probe the rate with a short run in the main process, then size the timed run.
    probe = DataLoader(Augmented(images, op, BATCH * 2, 0), batch_size=BATCH, num_workers=0)
    t0 = time.perf_counter()
    for _ in probe:
        pass
    rate = 2 * BATCH / (time.perf_counter() - t0)
    batches = max(4, int(rate * seconds * max(1, workers) / BATCH))
    loader = DataLoader(Augmented(images, op, BATCH * (batches + 2 * max(1, workers)), 1), batch_size=BATCH,
                        num_workers=workers, worker_init_fn=limit_threads if workers else None,
                        prefetch_factor=2 if workers else None) if workers else \
        DataLoader(Augmented(images, op, BATCH * (batches + 1), 1), batch_size=BATCH, num_workers=0)
    it = iter(loader)
    for _ in range(2 * max(1, workers) if workers else 1):  # warm-up: workers started and busy
        next(it)
    t0 = time.perf_counter()
    n = 0
    for batch in it:
        n += batch.shape[0]
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="224,512")
    ap.add_argument("--ops", default=",".join(OPS))
    ap.add_argument("--workers", default="0,1,2")
    ap.add_argument("--seconds", type=float, default=1.5)
    args = ap.parse_args()
    limit_threads()
    out = {"torch": torch.__version__, "cv2": cv2.__version__, "numpy": np.__version__, "batch": BATCH, "results": {}}
    for size in [int(s) for s in args.sizes.split(",")]:
        images = make_images(size)
        for op in args.ops.split(","):
            row = {}
            for w in [int(x) for x in args.workers.split(",")]:
                row[str(w)] = measure(images, op, w, args.seconds)
            best = max(row, key=row.get)
            row["best"], row["best_workers"] = row[best], int(best)
            out["results"][f"{op}/{size}"] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
