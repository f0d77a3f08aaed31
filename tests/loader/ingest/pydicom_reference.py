#!/usr/bin/python3
"""medload's DICOM decoding against an independent reader, pixel for pixel.

For every file under pydicom's own test files, under each --files folder, and in a set of
synthetic files written at run time (what the real files lack: uncompressed YBR_FULL, palette
colour, planar RGB, bits set above HighBit, signed MONOCHROME1 with a rescale), pydicom
(Debian's python3-pydicom with python3-gdcm) decodes the stored values, and this script applies
to them what docs/ingest.md ("Decoders, chosen by content") promises medload outputs:

  - stored values masked to BitsStored and sign-extended (PixelRepresentation 1);
  - MONOCHROME1 inverted over the BitsStored range (low + high - v), before the rescale;
  - a non-identity RescaleSlope/RescaleIntercept gives float32 slope * v + intercept; otherwise
    the stored type is kept: uint8 (unsigned, BitsStored <= 8), uint16 (unsigned), int16 (signed),
    and float32 for BitsStored above 16 (the docs name no type; no other PixelType holds them);
  - colour (RGB, YBR_*, PALETTE COLOR) rendered to 8-bit B,G,R (more than 8 bits: v >> (bits - 8),
    within 1, since the docs do not say how);
  - one image per frame.

medload_decode_dump (decode_dump.cpp) decodes the same file with decode_file, in a process of
its own so that a decoder that aborts is a finding, not the end of the run. Each file is then
one of:

  MATCH               medload's frames equal the expectation (exactly, or within the tolerance
                      named in the notes: 1 grey level for lossy codecs and colour conversions)
  MISMATCH            medload decoded it, but shape, type or pixels differ          -> fails
  MEDLOAD_REJECTED    pydicom decodes it, medload rejects it                        -> fails,
                      unless pydicom_reference_expected.json justifies that rejection, or the
                      image is exactly constant and medload calls it blank
  EXPECTED_REJECTION  the above, justified
  BOTH_REJECT         neither decodes it (not DICOM, no pixel data, truncated, ...)
  PYDICOM_ONLY_FAILS  medload decodes it, pydicom cannot (listed, not a failure)
  DUMPER_CRASH        the dumper died (a decoder abort() or segfault)               -> fails

Files with identical bytes are compared once. Exit status: 0 when nothing fails, 1 otherwise,
77 (ctest's skip) when pydicom or numpy is missing, unless MEDLOAD_REQUIRE_CORPUS=1 makes that
a failure; a --files folder that is missing is skipped the same way.

pydicom's pixel_array is taken as the stored values, from its numpy, RLE and GDCM handlers only
(Pillow's JPEG handler converts colour differently). With these handlers pixel_array keeps the
colour space that PhotometricInterpretation names (GDCM does not convert JPEG YCbCr), except
YBR_RCT and YBR_ICT, whose JPEG 2000 component transform the decoder undoes (PS3.5 8.2.4):
those come out RGB. GDCM's handler returns a buffer even when GDCM reports an error, so an
"Error:" from GDCM while pydicom decodes means pydicom has no image.

Usage (ctest runs it as PydicomReference.EveryImagePydicomDecodesMatches):
  /usr/bin/python3 pydicom_reference.py --dump build/.../medload_decode_dump [--files data/corpus/dicom]
"""

import argparse
import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import warnings

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
EXPECTED_FILE = os.path.join(HERE, "pydicom_reference_expected.json")

try:
    import numpy as np
    import pydicom
    from pydicom.pixel_data_handlers import gdcm_handler, numpy_handler, rle_handler
    from pydicom.pixel_data_handlers.util import apply_color_lut, convert_color_space
except ImportError as error:  # reported in main()
    IMPORT_ERROR = error
else:
    IMPORT_ERROR = None

# Transfer syntaxes whose decoders may legitimately differ by a grey level: lossy JPEG
# (baseline, extended), JPEG-LS near-lossless, JPEG 2000 (irreversible allowed).
LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "JPEG baseline",
    "1.2.840.10008.1.2.4.51": "JPEG extended",
    "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless",
    "1.2.840.10008.1.2.4.91": "JPEG 2000",
}
NUMPY_TYPE = {"uint8": "u1", "uint16": "u2", "int16": "i2", "float32": "f4"}
NO_PIXEL_DATA = "pydicom finds no Pixel Data (7FE0,0010)"


class CannotDecode(Exception):
    """pydicom (or this script, on pydicom's output) cannot produce the reference image."""


@dataclasses.dataclass
class Reference:
    """What docs/ingest.md says medload must output for one file."""
    frames: list          # numpy arrays [rows, cols] or [rows, cols, 3] (B,G,R), one per frame
    dtype: str            # "uint8", "uint16", "int16" or "float32"
    tolerance: float      # allowed |medload - reference| in grey levels of the stored values
    slope: float          # output units per grey level
    monochrome1: bool
    bits_stored: int
    header: str           # transfer syntax, photometric, bits, sign, rescale: for the report
    notes: list           # why the tolerance, what was inferred


@dataclasses.dataclass
class Result:
    path: str
    category: str
    detail: str = ""
    header: str = ""      # what pydicom read of the pixel module
    shown: str = ""       # the path as the summary shows it: from the folder that holds its root


# ---------------------------------------------------------------------------------------------
# The reference: pydicom's stored values, with the semantics docs/ingest.md promises.


def read_dataset(path):
    """The dataset as pydicom reads it, preamble or not; CannotDecode when it is not DICOM."""
    try:
        return pydicom.dcmread(path)
    except pydicom.errors.InvalidDicomError:
        pass
    except Exception as error:
        raise CannotDecode(f"pydicom cannot read it: {type(error).__name__}: {error}")
    try:
        return pydicom.dcmread(path, force=True)
    except Exception as error:
        raise CannotDecode(f"pydicom cannot read it: {type(error).__name__}: {error}")


def transfer_syntax(ds, notes):
    """The transfer syntax from the meta header; for a file without one, the encoding pydicom
    found the dataset in (pydicom needs it to decode native pixel data)."""
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if uid is not None:
        return str(uid)
    if ds.is_little_endian is None or ds.is_implicit_VR is None:
        raise CannotDecode("no transfer syntax, and pydicom did not find the dataset's encoding")
    uid = {(True, True): pydicom.uid.ImplicitVRLittleEndian,
           (True, False): pydicom.uid.ExplicitVRLittleEndian,
           (False, False): pydicom.uid.ExplicitVRBigEndian}.get((ds.is_little_endian, ds.is_implicit_VR))
    if uid is None:
        raise CannotDecode("no transfer syntax, and the dataset is implicit VR big endian")
    if meta is None:
        ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid
    notes.append(f"no transfer syntax in the meta header: {uid.name}, as pydicom read the dataset")
    return str(uid)


def pixel_array(ds):
    """ds.pixel_array, with what GDCM prints caught: its handler returns whatever buffer it has
    even after GDCM reports an error (JPEG2000-embedded-sequence-delimiter.dcm: OpenJPEG rejects
    the corrupted codestream, and pydicom returns stale memory), so an error means no image."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as messages:
        try:
            os.dup2(messages.fileno(), 2)
            array = ds.pixel_array
        except Exception as error:
            raise CannotDecode(f"pydicom cannot decode it: {type(error).__name__}: {error}")
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        messages.seek(0)
        lines = messages.read().decode(errors="replace").splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    if errors:
        said = " ".join(lines[errors[0]:errors[0] + 2])
        raise CannotDecode(f"pydicom's GDCM handler returned a buffer after GDCM failed: {said}")
    return array


def header_number(ds, keyword, default):
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    if isinstance(value, pydicom.multival.MultiValue):
        value = value[0]
    return float(value)


@dataclasses.dataclass
class PixelModule:
    """The header fields that decide the expectation, read before pixel_array: pydicom's
    handlers may rewrite them (the GDCM handler sets PixelRepresentation to 0 on a JPEG 2000
    file whose codestream is unsigned)."""
    syntax: str
    photometric: str
    rows: int
    cols: int
    samples: int
    frames: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    slope: float
    intercept: float
    modality_lut: bool

    @staticmethod
    def read(ds, syntax):
        try:
            return PixelModule(
                syntax, str(ds.PhotometricInterpretation), int(ds.Rows), int(ds.Columns),
                int(ds.get("SamplesPerPixel", 1)), int(ds.get("NumberOfFrames", 1) or 1),
                int(ds.BitsAllocated), int(ds.BitsStored), int(ds.get("PixelRepresentation", 0)) == 1,
                header_number(ds, "RescaleSlope", 1.0), header_number(ds, "RescaleIntercept", 0.0),
                "ModalityLUTSequence" in ds)
        except Exception as error:
            raise CannotDecode(f"pixel module unreadable: {type(error).__name__}: {error}")

    def describe(self):
        return (f"{pydicom.uid.UID(self.syntax).name}; {self.photometric}; "
                f"BitsAllocated {self.bits_allocated}, BitsStored {self.bits_stored}, "
                f"PixelRepresentation {int(self.signed)}; SamplesPerPixel {self.samples}, "
                f"frames {self.frames}, {self.rows}x{self.cols}; rescale {self.slope:g}/{self.intercept:g}")


def grey_frames(stored, pm, notes):
    """Mask, sign-extend, MONOCHROME1-invert and rescale grey frames [frames, rows, cols]:
    (frames, dtype, one grey level in output units)."""
    bits = pm.bits_stored
    v = stored.astype(np.int64) & ((1 << bits) - 1)
    if pm.signed:
        v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if pm.signed else (0, (1 << bits) - 1)
    if pm.photometric == "MONOCHROME1":
        v = low + high - v
    if pm.modality_lut:
        raise CannotDecode("a Modality LUT Sequence: docs/ingest.md does not say which type it gives")
    if pm.slope != 1.0 or pm.intercept != 0.0:
        return (v * pm.slope + pm.intercept).astype(np.float32), "float32", pm.slope
    if bits > 16:
        notes.append(f"BitsStored {bits} without a rescale: docs/ingest.md names no type; float32 is "
                     "the only PixelType that holds such values")
        return v.astype(np.float32), "float32", 1.0
    dtype = "int16" if pm.signed else "uint8" if bits <= 8 else "uint16"
    return v.astype(dtype), dtype, 1.0


def colour_frames(stored, pm, notes):
    """RGB or YBR frames [frames, rows, cols, 3] as 8-bit B,G,R, and the tolerance this adds."""
    tolerance = 0
    if pm.photometric in ("YBR_RCT", "YBR_ICT"):
        notes.append(f"{pm.photometric}: the JPEG 2000 decoder undoes the component transform, RGB out")
    elif pm.photometric in ("YBR_FULL", "YBR_FULL_422"):
        if pm.bits_stored != 8:
            raise CannotDecode(
                f"{pm.photometric} with BitsStored {pm.bits_stored}: pydicom converts 8-bit YBR only")
        stored = convert_color_space(stored, "YBR_FULL", "RGB")
        notes.append(f"{pm.photometric} converted to RGB by pydicom (PS3.3 C.7.6.3.1.2): within 1")
        tolerance = 1
    elif pm.photometric != "RGB":
        raise CannotDecode(f"{pm.photometric}: pydicom 2.3 has no conversion to RGB for it")
    v = stored.astype(np.int64) & ((1 << pm.bits_stored) - 1)
    if pm.bits_stored > 8:
        # docs/ingest.md says "rendered to 8-bit" without saying how: DCMTK shifts; a scale
        # by 255 / (2^bits - 1) differs from the shift by at most 1.
        shift = pm.bits_stored - 8
        v = v >> shift
        notes.append(f"{pm.bits_stored}-bit colour rendered to 8 bits (v >> {shift}): within 1")
        tolerance = 1
    return v[..., ::-1].astype(np.uint8), tolerance


def palette_frames(stored, ds, pm, notes):
    """PALETTE COLOR frames [frames, rows, cols] through their LUTs, as 8-bit B,G,R; and the
    tolerance this adds."""
    try:
        rgb = apply_color_lut(stored, ds).astype(np.int64)
        bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    except Exception as error:
        raise CannotDecode(f"pydicom cannot apply the palette: {type(error).__name__}: {error}")
    tolerance = 0
    if bits > 8:
        rgb = rgb >> (bits - 8)
        notes.append(f"{bits}-bit palette entries rendered to 8 bits (v >> {bits - 8}): within 1")
        tolerance = 1
    return rgb[..., ::-1].astype(np.uint8), tolerance


def reference(path):
    """The Reference for `path`; CannotDecode when pydicom cannot decode it."""
    ds = read_dataset(path)
    if "PixelData" not in ds:
        raise CannotDecode(NO_PIXEL_DATA)
    notes = []
    pm = PixelModule.read(ds, transfer_syntax(ds, notes))
    stored = pixel_array(ds)
    shape = (pm.frames, pm.rows, pm.cols) + ((pm.samples,) if pm.samples > 1 else ())
    if stored.size != np.prod(shape):
        raise CannotDecode(
            f"pydicom returned {stored.size} values for {pm.frames}x{pm.rows}x{pm.cols}x{pm.samples}")
    stored = stored.reshape(shape)

    tolerance = 0
    if pm.syntax in LOSSY_SYNTAXES:
        tolerance = 1
        notes.append(f"{LOSSY_SYNTAXES[pm.syntax]}: decoders may differ by 1")
    if pm.samples == 1 and pm.photometric == "PALETTE COLOR":
        out, colour_tolerance = palette_frames(stored, ds, pm, notes)
        dtype, slope, tolerance = "uint8", 1.0, max(tolerance, colour_tolerance)
    elif pm.samples == 1:
        out, dtype, slope = grey_frames(stored, pm, notes)
    elif pm.samples == 3:
        out, colour_tolerance = colour_frames(stored, pm, notes)
        dtype, slope, tolerance = "uint8", 1.0, max(tolerance, colour_tolerance)
    else:
        raise CannotDecode(f"SamplesPerPixel {pm.samples}")
    return Reference(list(out), dtype, tolerance, slope, pm.photometric == "MONOCHROME1",
                     pm.bits_stored, pm.describe(), notes)


# ---------------------------------------------------------------------------------------------
# medload's side: the dumper's outcome and frames.


def run_dumper(dumper, path, workdir, index):
    """(outcome dict, frames as numpy arrays) or a crash description string."""
    prefix = os.path.join(workdir, str(index))
    try:
        proc = subprocess.run([dumper, path, prefix], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=300)
    except subprocess.TimeoutExpired:
        return "no result after 300 s"
    if proc.returncode != 0:
        how = (f"signal {-proc.returncode} ({signal.Signals(-proc.returncode).name})"
               if proc.returncode < 0 else f"exit status {proc.returncode}")
        stderr = proc.stderr.decode(errors="replace").strip().splitlines()
        return how + (f"; last message: {stderr[-1][:200]}" if stderr else "")
    with open(prefix + ".json") as f:
        outcome = json.load(f)
    raw = np.fromfile(prefix + ".raw", dtype=np.uint8)
    frames, offset = [], 0
    for frame in outcome["frame_list"]:
        size = frame["pixel_bytes"]
        shape = (frame["height"], frame["width"]) + ((frame["channels"],) if frame["channels"] > 1 else ())
        frames.append(raw[offset:offset + size].view("=" + NUMPY_TYPE[frame["type"]]).reshape(shape))
        offset += size
    os.remove(prefix + ".json")
    os.remove(prefix + ".raw")
    return outcome, frames


# ---------------------------------------------------------------------------------------------
# Comparison.


def compare_frames(ref, outcome, frames):
    """What differs from what docs/ingest.md promises ('' when nothing), and how closely the
    pixels agree (worth showing for a comparison within a tolerance)."""
    if len(frames) != len(ref.frames):
        return f"{len(frames)} frames, pydicom {len(ref.frames)}", ""
    meta = outcome["frame_list"][0]
    if frames[0].shape != ref.frames[0].shape or any(f.shape != frames[0].shape for f in frames):
        shapes = sorted({f.shape for f in frames})
        return f"shape {shapes} (rows, cols[, channels]), pydicom {ref.frames[0].shape}", ""
    problems = []
    if meta["type"] != ref.dtype:
        problems.append(f"type {meta['type']}, docs/ingest.md promises {ref.dtype}")
    if ref.frames[0].ndim == 2 and meta["was_monochrome1"] != ref.monochrome1:
        problems.append(f"was_monochrome1 {meta['was_monochrome1']}, the header says {ref.monochrome1}")
    if ref.frames[0].ndim == 2 and meta["bits_stored"] != ref.bits_stored:
        problems.append(f"bits_stored {meta['bits_stored']}, the header says {ref.bits_stored}")

    got = np.stack(frames).astype(np.float64)
    want = np.stack(ref.frames)
    diff = np.abs(got - want)
    allowed = ref.tolerance * abs(ref.slope)
    if want.dtype == np.float32:
        # slope * v + intercept rounded to float32 once (here) or twice (a float32 multiply
        # and add): allow two float32 steps at the value's magnitude.
        allowed = allowed + 2 * np.spacing(np.abs(want))
    bad = diff > allowed
    if bad.any():
        first = tuple(int(k) for k in np.argwhere(bad)[0])
        where = "(frame, row, col" + (", channel)" if want.ndim == 4 else ")")
        problems.append(
            f"{int(bad.sum())} of {bad.size} values differ by more than {ref.tolerance} grey "
            f"level(s), max |diff| {diff.max():g}; first at {where} {first}: "
            f"medload {got[first]:.10g}, expected {want[first]:.10g}")
    agreement = f"max |diff| {diff.max():g}, {int(np.count_nonzero(diff))} of {diff.size} values differ"
    if not ref.tolerance and diff.max() > 0:
        agreement += " (float32 rounding)"
    return "; ".join(problems), agreement


def classify(path, ref, medload, expected_rejections):
    if isinstance(medload, str):
        return Result(path, "DUMPER_CRASH", medload, getattr(ref, "header", ""))
    outcome, frames = medload
    said = f"{outcome['reason']}: {outcome['detail']}" if not outcome["ok"] else ""
    if isinstance(ref, CannotDecode):
        if outcome["ok"]:
            return Result(path, "PYDICOM_ONLY_FAILS",
                          f"medload: ok ({outcome['format']}, {outcome['frames']} frame(s)); {ref}")
        return Result(path, "BOTH_REJECT", f"medload {said}; {ref}")
    if not outcome["ok"]:
        justification = justified_rejection(path, outcome, ref, expected_rejections)
        if justification:
            return Result(path, "EXPECTED_REJECTION", f"medload {said} ({justification})", ref.header)
        return Result(path, "MEDLOAD_REJECTED", f"medload {said}", ref.header)
    differences, agreement = compare_frames(ref, outcome, frames)
    if agreement.startswith("max |diff| 0,") and not ref.tolerance:
        agreement = ""  # exact: nothing to add
    if agreement and not differences:
        ref.notes.append(agreement)
    notes = "; ".join(ref.notes)
    if differences:
        return Result(path, "MISMATCH", differences + (f" [{notes}]" if notes else ""), ref.header)
    return Result(path, "MATCH", notes, ref.header)


def justified_rejection(path, outcome, ref, expected_rejections):
    """Why rejecting this image is right, or '' when nothing says it is."""
    if outcome["reason"] == "blank" and all(np.all(f == f.flat[0]) for f in ref.frames):
        return "every frame is constant in pydicom too"
    for entry in expected_rejections:
        if path.endswith("/" + entry["file"]) and entry["reason"] == outcome["reason"]:
            return entry["justification"]
    return ""


# ---------------------------------------------------------------------------------------------
# Synthetic files, written at run time: what pydicom's test files lack (uncompressed YBR_FULL,
# palette colour, planar RGB, bits above HighBit set, signed MONOCHROME1 with a rescale).


def smooth_image(rng, rows, cols, top):
    """A gradient with noise, 0 .. top, non-square so that a transposition shows."""
    r, c = np.mgrid[0:rows, 0:cols]
    base = (r * 3 + c * 5) / (rows * 3 + cols * 5) * top * 0.8
    return np.clip(base + rng.integers(0, max(top // 8, 2), (rows, cols)), 0, top).astype(np.int64)


def new_dataset(rows, cols, syntax=None):
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = syntax or pydicom.uid.ExplicitVRLittleEndian
    ds = pydicom.dataset.FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.PatientID = "synthetic"
    ds.Rows, ds.Columns = rows, cols
    ds.is_little_endian = meta.TransferSyntaxUID != pydicom.uid.ExplicitVRBigEndian
    ds.is_implicit_VR = meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian
    return ds


def set_pixels(ds, values, photometric, bits_allocated, bits_stored, signed, samples=1):
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = samples
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    dtype = np.dtype(f"{'>' if not ds.is_little_endian else '<'}u{bits_allocated // 8}")
    # Two's complement in the allocated width: the bits above HighBit are what `values` has there.
    ds.PixelData = (np.asarray(values, dtype=np.int64) & ((1 << bits_allocated) - 1)).astype(dtype).tobytes()


def grey_with_high_bits(rng, rows, cols, bits_stored, signed, bits_allocated=16):
    """Stored values of `bits_stored` bits, signed or not, with random bits above HighBit."""
    v = smooth_image(rng, rows, cols, (1 << bits_stored) - 1)
    if signed:
        v = v - (1 << (bits_stored - 1))
    v = v & ((1 << bits_stored) - 1)
    return v | (rng.integers(0, 1 << (bits_allocated - bits_stored), (rows, cols)) << bits_stored)


def write_synthetic_files(folder):
    """The synthetic files, written into `folder`; returns their paths."""
    rng = np.random.default_rng(13)
    rows, cols = 24, 20
    files = {}

    ds = new_dataset(rows, cols)
    set_pixels(ds, grey_with_high_bits(rng, rows, cols, 12, False), "MONOCHROME2", 16, 12, False)
    files["unsigned12_bits_above_highbit.dcm"] = ds

    ds = new_dataset(rows, cols, pydicom.uid.ExplicitVRBigEndian)
    set_pixels(ds, grey_with_high_bits(rng, rows, cols, 12, True), "MONOCHROME2", 16, 12, True)
    files["signed12_big_endian_bits_above_highbit.dcm"] = ds

    ds = new_dataset(rows, cols)
    set_pixels(ds, grey_with_high_bits(rng, rows, cols, 10, True), "MONOCHROME1", 16, 10, True)
    ds.RescaleSlope, ds.RescaleIntercept = "2.5", "-100"
    files["monochrome1_signed10_rescale.dcm"] = ds

    ds = new_dataset(rows, cols)
    set_pixels(ds, smooth_image(rng, rows, cols, 65535), "MONOCHROME2", 16, 16, False)
    ds.RescaleSlope, ds.RescaleIntercept = "1", "0"
    files["uint16_identity_rescale.dcm"] = ds

    ds = new_dataset(rows, cols)
    set_pixels(ds, smooth_image(rng, rows, cols, 255) - 128, "MONOCHROME2", 8, 8, True)
    files["signed8.dcm"] = ds

    ds = new_dataset(rows, cols)
    frames = np.stack([smooth_image(rng, rows, cols, 255) for _ in range(3)])
    set_pixels(ds, frames, "MONOCHROME1", 8, 8, False)
    ds.NumberOfFrames = 3
    files["monochrome1_uint8_3frames.dcm"] = ds

    rgb = np.stack([smooth_image(rng, rows, cols, 255) for _ in range(3)], axis=-1)
    ds = new_dataset(rows, cols)
    set_pixels(ds, rgb, "RGB", 8, 8, False, samples=3)
    ds.PlanarConfiguration = 1
    ds.PixelData = np.ascontiguousarray(rgb.transpose(2, 0, 1)).astype(np.uint8).tobytes()
    files["rgb_planar.dcm"] = ds

    ds = new_dataset(rows, cols)
    ybr = convert_color_space(rgb.astype(np.uint8), "RGB", "YBR_FULL")
    set_pixels(ds, ybr, "YBR_FULL", 8, 8, False, samples=3)
    files["ybr_full_uncompressed.dcm"] = ds

    ds = new_dataset(rows, cols)
    set_pixels(ds, smooth_image(rng, rows, cols, 255), "PALETTE COLOR", 8, 8, False)
    entries = np.arange(256)
    luts = {"Red": entries * 257, "Green": (255 - entries) * 257, "Blue": (entries * 7 % 256) * 250}
    for colour, lut in luts.items():
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", lut.astype("<u2").tobytes())
    files["palette_colour_16bit_lut.dcm"] = ds

    paths = []
    for name, ds in files.items():
        path = os.path.join(folder, name)
        ds.save_as(path, write_like_original=False)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# Driver.


def list_files(roots):
    """Every regular file under `roots`, sorted, the first of each set of identical files, as
    (path, path from the folder that holds its root); and how many copies were left out."""
    seen, files, duplicates = set(), [], 0
    for root in roots:
        for folder, subfolders, names in os.walk(root):
            subfolders.sort()
            for name in sorted(names):
                path = os.path.join(folder, name)
                if not os.path.isfile(path):
                    continue
                with open(path, "rb") as f:
                    digest = hashlib.sha256(f.read()).digest()
                if digest in seen:
                    duplicates += 1
                    continue
                seen.add(digest)
                files.append((path, os.path.relpath(path, os.path.dirname(os.path.abspath(root)))))
    return files, duplicates


def load_expected_rejections():
    with open(EXPECTED_FILE) as f:
        entries = json.load(f)["rejections"]
    for entry in entries:
        if not entry.get("justification"):
            raise SystemExit(f"{EXPECTED_FILE}: {entry.get('file')} has no justification")
    return entries


FAILING = ("MISMATCH", "MEDLOAD_REJECTED", "DUMPER_CRASH")
ORDER = ("MATCH", "EXPECTED_REJECTION", "BOTH_REJECT", "PYDICOM_ONLY_FAILS") + FAILING


def print_summary(results, roots, duplicates):
    counts = collections.Counter(r.category for r in results)
    print(f"\n{len(results)} distinct files under {', '.join(roots)} ({duplicates} identical copies skipped)")
    for category in ORDER:
        flag = "   <- fails the test" if category in FAILING and counts.get(category) else ""
        print(f"  {category:20} {counts.get(category, 0):4}{flag}")
    for category in ORDER[1:]:
        listed = [r for r in results if r.category == category]
        if category == "BOTH_REJECT":
            # Files without an image (reports, plans, DICOMDIRs, text) are many and alike: one line.
            no_image = [r for r in listed if NO_PIXEL_DATA in r.detail]
            listed = [r for r in listed if NO_PIXEL_DATA not in r.detail]
            reasons = collections.Counter(r.detail.split(":")[0] for r in no_image)
            if no_image:
                print(f"\nBOTH_REJECT, no pixel data for pydicom ({len(no_image)} files: "
                      + ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items())) + "):")
                for r in no_image:
                    medload_said = r.detail[:-len(NO_PIXEL_DATA) - 2]
                    print(f"  {r.shown:56} {medload_said[:110]}")
        if not listed:
            continue
        print(f"\n{category}:")
        for r in listed:
            print(f"  {r.shown}\n      {r.detail}")
            if r.header and category in FAILING:
                print(f"      pydicom: {r.header}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dump", required=True, help="the medload_decode_dump executable")
    parser.add_argument("--files", action="append", default=[],
                        help="a further folder of DICOM files (repeatable); "
                             "pydicom's test files are always read")
    parser.add_argument("--jobs", type=int, default=2, help="dumper processes at once")
    parser.add_argument("--verbose", action="store_true", help="also list every MATCH")
    args = parser.parse_args()

    warnings.simplefilter("ignore")  # pydicom's warnings on the malformed test files
    required = os.environ.get("MEDLOAD_REQUIRE_CORPUS") == "1"
    if IMPORT_ERROR is not None:
        print(f"pydicom_reference needs numpy and pydicom: {IMPORT_ERROR}; "
              f"install python3-pydicom and python3-gdcm (Debian) for {sys.executable}")
        return 1 if required else SKIP
    pydicom.config.pixel_data_handlers = [numpy_handler, rle_handler, gdcm_handler]
    if not gdcm_handler.is_available():
        print("pydicom_reference: pydicom's GDCM handler is not available; install python3-gdcm")
        return 1 if required else SKIP

    folders = [os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")]
    for folder in args.files:
        if os.path.isdir(folder):
            folders.append(folder)
        elif required:
            print(f"pydicom_reference: {folder} is missing (MEDLOAD_REQUIRE_CORPUS=1); "
                  "run scripts/fetch_corpus.sh")
            return 1
        else:
            print(f"pydicom_reference: {folder} is missing; comparing without it")
    expected_rejections = load_expected_rejections()

    results = []
    with tempfile.TemporaryDirectory(prefix="pydicom_reference.") as workdir, \
            concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        synthetic = os.path.join(workdir, "synthetic")
        os.mkdir(synthetic)
        write_synthetic_files(synthetic)
        roots = folders + [synthetic]
        files, duplicates = list_files(roots)
        dumps = [pool.submit(run_dumper, args.dump, path, workdir, i) for i, (path, _) in enumerate(files)]
        for (path, shown), dump in zip(files, dumps):
            try:
                ref = reference(path)
            except CannotDecode as error:
                ref = error
            result = classify(path, ref, dump.result(), expected_rejections)
            result.shown = shown
            results.append(result)
            if args.verbose and result.category == "MATCH":
                print(f"MATCH {shown}: {result.detail or 'exact'}")
    print_summary(results, folders + ["synthetic files"], duplicates)
    failed = sum(r.category in FAILING for r in results)
    print(f"\n{'FAILED' if failed else 'PASSED'}: {failed} file(s) in {', '.join(FAILING)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
