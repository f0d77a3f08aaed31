#!/usr/bin/python3
"""The Python peer of `medload build` (DESIGN.md R1): the same decode + preprocess operations with
OpenCV (cv2) in a multiprocessing pool, written to HDF5 with h5py, one image per chunk.

    /usr/bin/python3 peer_build.py build INPUT_DIR OUTPUT.h5 [--size 256] [--processes 2]
    /usr/bin/python3 peer_build.py generate OUT_DIR --kind png16|jpeg8 [--count 24] [--side 2048]

`build` reads every PNG/JPEG under INPUT_DIR (sorted; first-level folders are the classes) and runs,
per image: imread(IMREAD_UNCHANGED) -> grayscale -> percentile clip 0.5..99.5 for more than 8 bits
(to uint8) -> ROI crop (threshold at 5% of the range, largest connected component, bounding box
+ 4 px margin) -> letterbox (pad to a square, INTER_AREA resize to --size) -> CLAHE (clip 2,
8x8 tiles) -> bilateral (d 5, sigma colour 10, sigma space 3) -> uint8; the parent writes the
results in input order to /images [N,S,S] and /labels. Blank (constant) images are skipped.
It prints one JSON line: {"images", "seconds", "images_per_second", "processes"}; seconds run from
listing the files to closing the HDF5 file (interpreter start and imports excluded, as medload's
figure excludes process start).
`generate` writes the synthetic radiograph-like inputs both sides of the comparison read.
"""
import argparse
import json
import os
import sys
import time
from multiprocessing import Pool

import cv2
import h5py
import numpy as np

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
SIZE = 256


def list_files(root):
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.lower().endswith(EXTENSIONS) and not name.startswith("."):
                files.append(os.path.join(folder, name))
    files.sort(key=lambda p: os.path.relpath(p, root))
    return files


def preprocess(path):
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        return None
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    if image.dtype != np.uint8:
        lo, hi = np.percentile(image, (0.5, 99.5))
        if hi <= lo:
            return None
        image = np.clip((image.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    if image.min() == image.max():
        return None
    # ROI: largest bright component's bounding box plus a margin.
    _, mask = cv2.threshold(image, int(0.05 * 255), 255, cv2.THRESH_BINARY)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count > 1:
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        x, y, w, h = stats[best, :4]
        m = 4
        x0, y0 = max(0, x - m), max(0, y - m)
        x1, y1 = min(image.shape[1], x + w + m), min(image.shape[0], y + h + m)
        image = image[y0:y1, x0:x1]
    # Letterbox: scale the longer side to SIZE, pad the shorter one (centred).
    h, w = image.shape
    scale = SIZE / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    top, left = (SIZE - nh) // 2, (SIZE - nw) // 2
    square = cv2.copyMakeBorder(resized, top, SIZE - nh - top, left, SIZE - nw - left, cv2.BORDER_CONSTANT, value=0)
    square = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(square)
    square = cv2.bilateralFilter(square, 5, 10, 3)
    return square.tobytes()


def init(size):
    global SIZE
    SIZE = size


def build(args):
    start = time.perf_counter()
    files = list_files(args.input)
    classes = sorted({os.path.relpath(p, args.input).split(os.sep)[0] for p in files
                      if os.sep in os.path.relpath(p, args.input)})
    index = {c: i for i, c in enumerate(classes)}
    with Pool(args.processes, initializer=init, initargs=(args.size,)) as pool:
        results = pool.map(preprocess, files, chunksize=4)
    kept = [(p, r) for p, r in zip(files, results) if r is not None]
    with h5py.File(args.output, "w") as f:
        images = f.create_dataset("images", (len(kept), args.size, args.size), dtype="u1",
                                  chunks=(1, args.size, args.size))
        labels = np.full(len(kept), -1, dtype=np.int64)
        for i, (path, data) in enumerate(kept):
            images[i] = np.frombuffer(data, dtype=np.uint8).reshape(args.size, args.size)
            rel = os.path.relpath(path, args.input)
            if os.sep in rel:
                labels[i] = index[rel.split(os.sep)[0]]
        f.create_dataset("labels", data=labels)
    seconds = time.perf_counter() - start
    print(json.dumps({"images": len(kept), "seconds": seconds, "images_per_second": len(kept) / seconds,
                      "processes": args.processes}))


def make_image(seed, side, kind):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    body = np.exp(-((xx - 0.5) ** 2 / 0.08 + (yy - 0.5) ** 2 / 0.12))
    texture = 0.15 * np.sin(xx * (17 + seed % 5)) * np.cos(yy * 11)
    image = 0.65 * body + texture + 0.03 * rng.standard_normal((side, side)).astype(np.float32)
    border = side // 16
    image[:, :border] = 0
    image[:, -border:] = 0
    image = np.clip(image, 0, 1)
    if kind == "png16":
        return (image * 4095).astype(np.uint16)  # 12 bits stored in 16, as radiographs are
    return (image * 255).astype(np.uint8)


def generate(args):
    for i in range(args.count):
        folder = os.path.join(args.output, "class%d" % (i % 2))
        os.makedirs(folder, exist_ok=True)
        image = make_image(i, args.side, args.kind)
        if args.kind == "png16":
            cv2.imwrite(os.path.join(folder, "img%03d.png" % i), image)
        else:
            cv2.imwrite(os.path.join(folder, "img%03d.jpg" % i), image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("input")
    b.add_argument("output")
    b.add_argument("--size", type=int, default=256)
    b.add_argument("--processes", type=int, default=2)
    g = sub.add_parser("generate")
    g.add_argument("output")
    g.add_argument("--kind", choices=("png16", "jpeg8"), required=True)
    g.add_argument("--count", type=int, default=24)
    g.add_argument("--side", type=int, default=2048)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # each pool process is one worker, as each medload thread is
    if args.command == "build":
        build(args)
    else:
        generate(args)


if __name__ == "__main__":
    sys.exit(main())
