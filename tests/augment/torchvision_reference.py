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


def main():
    folder = sys.argv[1]
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
