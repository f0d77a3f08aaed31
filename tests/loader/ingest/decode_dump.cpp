// medload_decode_dump FILE OUT_PREFIX: decodes one file with decode_file, in this process, and
// writes what came out for an independent reader to compare (pydicom_reference.py):
//   OUT_PREFIX.json  the outcome and, per frame, every field of DecodedImage but its pixels
//   OUT_PREFIX.raw   the frames' pixels, concatenated in frame order, exactly as
//                    DecodedImage::pixels holds them (row-major, B,G,R interleaved, native endian)
// Validation is as permissive as ValidationOptions allows (min_side 1, only exactly constant
// images blank, the largest max_pixels, no duplicate check), so that tiny test images reach the
// comparison.
// A decoder that aborts takes this process with it: the caller sees the signal.

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/loader/ingest/scanner.h"

namespace {

using medload::loader::DecodedImage;
using medload::loader::PixelType;

const char* type_name(PixelType type) {
  switch (type) {
    case PixelType::kUInt8:
      return "uint8";
    case PixelType::kUInt16:
      return "uint16";
    case PixelType::kInt16:
      return "int16";
    case PixelType::kFloat32:
      return "float32";
  }
  return "unknown";
}

const char* function_name(medload::loader::VoiTransform::Function function) {
  using Function = medload::loader::VoiTransform::Function;
  switch (function) {
    case Function::kLinear:
      return "LINEAR";
    case Function::kLinearExact:
      return "LINEAR_EXACT";
    case Function::kSigmoid:
      return "SIGMOID";
    case Function::kTable:
      return "TABLE";
  }
  return "unknown";
}

nlohmann::json describe(const std::optional<medload::loader::VoiTransform>& voi) {
  if (!voi) return nullptr;
  return {{"function", function_name(voi->function)},
          {"center", voi->center},
          {"width", voi->width},
          {"first_mapped", voi->first_mapped},
          {"table_bits", voi->table_bits},
          {"table_size", voi->table.size()}};
}

nlohmann::json describe(const DecodedImage& f) {
  return {{"height", f.height},
          {"width", f.width},
          {"channels", f.channels},
          {"type", type_name(f.type)},
          {"pixel_bytes", f.pixels.size()},
          {"bits_stored", f.bits_stored},
          {"voi", describe(f.voi)},
          {"was_monochrome1", f.was_monochrome1},
          {"monochrome1_mirror", f.monochrome1_mirror},
          {"frame_index", f.frame_index},
          {"frame_count", f.frame_count},
          {"format", f.format},
          {"source_hash", f.source_hash},
          {"modality", f.info.modality},
          {"patient_id", f.info.patient_id},
          {"series_uid", f.info.series_uid},
          {"view", f.info.view},
          {"site", f.info.site}};
}

medload::loader::ValidationOptions permissive_options() {
  medload::loader::ValidationOptions options;
  options.min_side = 1;
  options.blank_contrast_to_noise = 0;
  options.max_pixels = 4'000'000'000;
  options.reject_duplicates = false;
  options.isolation = medload::loader::Isolation::kInProcess;
  options.threads = 1;
  options.validate();
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: medload_decode_dump FILE OUT_PREFIX\n";
    return 2;
  }
  medload::loader::SourceFile source;
  source.path = argv[1];
  source.report_path = argv[1];
  const std::string prefix = argv[2];

  std::vector<DecodedImage> frames;
  const medload::loader::FileOutcome outcome =
      medload::loader::decode_file(source, permissive_options(), frames);

  nlohmann::json out = outcome.to_json();
  out["ok"] = outcome.ok;
  out["height"] = outcome.height;
  out["width"] = outcome.width;
  out["bits_stored"] = outcome.bits_stored;
  out["frame_list"] = nlohmann::json::array();
  std::ofstream raw(prefix + ".raw", std::ios::binary);
  for (const DecodedImage& f : frames) {
    out["frame_list"].push_back(describe(f));
    raw.write(reinterpret_cast<const char*>(f.pixels.data()), static_cast<std::streamsize>(f.pixels.size()));
  }
  std::ofstream json(prefix + ".json");
  json << out.dump(1) << '\n';
  raw.flush();
  json.flush();
  if (!raw || !json) {
    std::cerr << "medload_decode_dump: cannot write " << prefix << ".json or .raw\n";
    return 2;
  }
  return 0;
}
