#!/usr/bin/python3
"""medload's augmentation against torchvision.transforms.functional (the outside reference).

Usage: torchvision_reference.py DIR, where DIR holds cases.json, the inputs (input_f32.bin,
input_u8.bin: [n,1,h,w] float32 in [0,1] and uint8) and medload's outputs, written by
tests/augment/torchvision_reference_test.cpp. Exits 0 when every case is within its tolerance.

Tolerances (stated here and in docs/augment.md):
- gamma, brightness, contrast: float32 max |diff| <= 1e-5; uint8 max |diff| <= 1 grey level
  (torchvision truncates when converting back to uint8, medload rounds to nearest).
- affine (rotation, translation, scale, bilinear, zero fill, centre at ((W-1)/2, (H-1)/2),
  clockwise angle), compared on pixels whose bilinear footprint lies inside the image:
  tensor path (grid_sample, as torchvision) float32 max |diff| <= 1e-4;
  CPU path (OpenCV warpAffine, coordinates quantised to 1/32 pixel) float32 mean |diff| <= 1e-3
  and max |diff| <= 0.02; uint8 mean |diff| <= 0.2 and max |diff| <= 4 grey levels.

When DIR holds mask_cases.json instead (written by the mask test there), the script checks
medload's label-mask warp (augment/target_warp.h: nearest neighbour, background 0 outside, flips
before the warp) against F.affine(F.hflip / F.vflip(mask), ..., interpolation=NEAREST, fill=0) on
masks_u16.bin ([n,1,h,w] uint16). Nearest neighbour is exact except at ties: where an output
pixel's source coordinate lies on a pixel boundary (half-way between two pixel centres),
torchvision rounds half to even on a float32 grid and OpenCV rounds half up after quantising to
1/1024 pixel. So every pixel that differs must be a near tie (source coordinate, computed in
double from torchvision's own inverse matrix, within MASK_TIE_WINDOW of a boundary along x or
y), and at least MASK_MIN_AGREEMENT of the pixels must agree in every case. "Round" parameters
can put a whole row on ties (vflip_shift: 0.97 * 37 = 35.89 exactly), hence the noise mask
(every pixel its own label) agrees at 98.4% there and 99.86-100% elsewhere.
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode

TOLERANCES = {
    # (op kind, path, input): (max_abs, mean_abs)
    ("point", "cpu", "f32"): (1e-5, None),
    ("point", "tensor", "f32"): (1e-5, None),
    ("point", "cpu", "u8"): (1.0, None),
    ("affine", "tensor", "f32"): (1e-4, None),
    ("affine", "cpu", "f32"): (0.02, 1e-3),
    ("affine", "cpu", "u8"): (4.0, 0.2),
}


MASK_MIN_AGREEMENT = 0.98
MASK_TIE_WINDOW = 2e-3  # pixels: OpenCV's 1/1024 quantisation (twice) and float32 grid rounding


def reference(op, args, img):
    if op == "gamma":
        return F.adjust_gamma(img, args["factor"])
    if op == "brightness":
        return F.adjust_brightness(img, args["factor"])
    if op == "contrast":
        return F.adjust_contrast(img, args["factor"])
    if op == "affine":
        return F.affine(img, angle=args["angle"], translate=[float(t) for t in args["translate"]],
                        scale=args["scale"], shear=[0.0, 0.0],
                        interpolation=InterpolationMode.BILINEAR, fill=0.0)
    raise ValueError(op)


def mask_reference(args, mask):
    if args["horizontal_flip"]:
        mask = F.hflip(mask)
    if args["vertical_flip"]:
        mask = F.vflip(mask)
    return F.affine(mask, angle=args["angle"], translate=[float(t) for t in args["translate"]], scale=args["scale"],
                    shear=[0.0, 0.0], interpolation=InterpolationMode.NEAREST, fill=0.0)


def near_ties(args, h, w):
    """[h, w] bool: output pixels whose source coordinate is within MASK_TIE_WINDOW of a pixel
    boundary (flips move boundaries onto boundaries, so the affine part decides)."""
    m = F._get_inverse_affine_matrix([0.0, 0.0], args["angle"], [float(t) for t in args["translate"]],
                                     args["scale"], [0.0, 0.0])
    y, x = np.meshgrid(np.arange(h, dtype=np.float64) - (h - 1) / 2, np.arange(w, dtype=np.float64) - (w - 1) / 2,
                       indexing="ij")
    sx = m[0] * x + m[1] * y + m[2] + (w - 1) / 2
    sy = m[3] * x + m[4] * y + m[5] + (h - 1) / 2

    def tie(v):
        return np.abs(v - np.floor(v) - 0.5) < MASK_TIE_WINDOW

    return torch.from_numpy(tie(sx) | tie(sy))


def check_masks(folder):
    """Returns (cases checked, failures) for DIR/mask_cases.json."""
    manifest = json.load(open(os.path.join(folder, "mask_cases.json")))
    n, h, w = manifest["n"], manifest["h"], manifest["w"]

    def read(name):
        raw = np.fromfile(os.path.join(folder, name), dtype=np.uint16).reshape(n, 1, h, w)
        return torch.from_numpy(raw.astype(np.int32))  # torch 1.13 has no uint16

    masks = read("masks_u16.bin")
    failures = 0
    print(f"{'mask case':28} {'agree':>9} {'differ':>7} {'not tie':>7} {'ties':>5} {'min':>6}  result")
    worst = 1.0
    for case in manifest["cases"]:
        ours = read(case["file"])
        ref = torch.stack([mask_reference(case["args"], masks[i]) for i in range(n)])
        ties = near_ties(case["args"], h, w)
        for i in range(n):
            differ = ours[i, 0] != ref[i, 0]
            same = 1.0 - differ.double().mean().item()
            unexplained = int((differ & ~ties).sum().item())
            ok = same >= MASK_MIN_AGREEMENT and unexplained == 0
            failures += 0 if ok else 1
            worst = min(worst, same)
            print(f"{case['name'] + '/' + manifest['masks'][i]:28} {same:9.5f} {int(differ.sum().item()):7d} "
                  f"{unexplained:7d} {int(ties.sum().item()):5d} {MASK_MIN_AGREEMENT:6.3f}  {'ok' if ok else 'FAIL'}")
    print(f"lowest mask agreement: {worst:.5f}")
    checked = len(manifest["cases"]) * n
    print(f"mask cases checked: {checked}, failures: {failures}")
    return checked, failures


def main():
    folder = sys.argv[1]
    if os.path.exists(os.path.join(folder, "mask_cases.json")):
        return 1 if check_masks(folder)[1] else 0
    manifest = json.load(open(os.path.join(folder, "cases.json")))
    n, h, w = manifest["n"], manifest["h"], manifest["w"]
    inputs = {
        "f32": torch.from_numpy(np.fromfile(os.path.join(folder, "input_f32.bin"), dtype=np.float32).reshape(n, 1, h, w)),
        "u8": torch.from_numpy(np.fromfile(os.path.join(folder, "input_u8.bin"), dtype=np.uint8).reshape(n, 1, h, w)),
    }
    failures = 0
    checked = 0
    print(f"torch {torch.__version__}, torchvision reference")
    print(f"{'case':28} {'path':6} {'in':3} {'max|d|':>9} {'mean|d|':>9} {'tol max':>8} {'tol mean':>8}  result")
    for case in manifest["cases"]:
        dtype = np.float32 if case["input"] == "f32" else np.uint8
        ours = torch.from_numpy(np.fromfile(os.path.join(folder, case["file"]), dtype=dtype).reshape(n, 1, h, w))
        img = inputs[case["input"]]
        ref = torch.stack([reference(case["op"], case["args"], img[i]) for i in range(n)])
        kind = "affine" if case["op"] == "affine" else "point"
        diff = (ours.double() - ref.double()).abs()
        if kind == "affine":
            # Pixels whose bilinear footprint lies inside the input: warping an all-ones image
            # gives exactly 1 there; one more pixel is dropped for the 1/32 pixel quantisation.
            ones = F.affine(torch.ones(1, h, w), angle=case["args"]["angle"],
                            translate=[float(t) for t in case["args"]["translate"]], scale=case["args"]["scale"],
                            shear=[0.0, 0.0], interpolation=InterpolationMode.BILINEAR, fill=0.0)
            inside = (ones >= 1.0 - 1e-6).float()
            inside = (-torch.nn.functional.max_pool2d(-inside.unsqueeze(0), 3, stride=1, padding=1)).squeeze(0)
            mask = inside.bool().expand(n, 1, h, w)
            diff = diff[mask]
            if diff.numel() < 0.5 * n * h * w:
                print(f"{case['name']}: only {diff.numel()} interior pixels")
                failures += 1
                continue
        max_d, mean_d = diff.max().item(), diff.mean().item()
        tol_max, tol_mean = TOLERANCES[(kind, case["path"], case["input"])]
        ok = max_d <= tol_max and (tol_mean is None or mean_d <= tol_mean)
        failures += 0 if ok else 1
        checked += 1
        print(f"{case['name']:28} {case['path']:6} {case['input']:3} {max_d:9.2e} {mean_d:9.2e} {tol_max:8.1e} "
              f"{'' if tol_mean is None else f'{tol_mean:8.1e}':>8}  {'ok' if ok else 'FAIL'}")
    print(f"cases checked: {checked}, failures: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
