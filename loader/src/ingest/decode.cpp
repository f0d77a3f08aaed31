// decode_file: one file from bytes to validated frames. Used in-process and inside the forked
// workers of the Scanner.

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include <unistd.h>

#include "blank.h"
#include "decoders.h"
#include "medload/core/file_descriptor.h"
#include "medload/core/hash.h"
#include "medload/core/regular_file.h"
#include "medload/loader/ingest/scanner.h"
#include "scan_internal.h"
#include "targets_check.h"

namespace medload::loader {

namespace detail {

namespace {

std::string format_double(double v) {
  std::ostringstream out;
  out.precision(3);
  out << v;
  return out.str();
}

void fill_missing(std::string& field, const std::string& from_header) {
  if (field.empty()) field = from_header;
}

bool starts_with(const std::uint8_t* data, std::size_t size, std::string_view prefix, std::size_t at = 0) {
  return size >= at + prefix.size() && std::memcmp(data + at, prefix.data(), prefix.size()) == 0;
}

}  // namespace

std::string_view describe_content(const std::uint8_t* data, std::size_t size) {
  if (starts_with(data, size, "%PDF")) return "a PDF document";
  if (starts_with(data, size, "PK\x03\x04")) return "a ZIP archive";
  if (starts_with(data, size, "\x1f\x8b")) return "gzip-compressed data";
  if (starts_with(data, size, "\x7f" "ELF")) return "an executable (ELF)";
  if (starts_with(data, size, "n+1", 344) || starts_with(data, size, "ni1", 344)) return "a NIfTI volume";
  if (starts_with(data, size, "GIF8")) return "a GIF image";
  if (starts_with(data, size, "RIFF") && starts_with(data, size, "WEBP", 8)) return "a WebP image";
  const std::size_t probe = std::min<std::size_t>(size, 4096);
  const bool text = std::all_of(data, data + probe, [](std::uint8_t c) {
    return c == '\t' || c == '\n' || c == '\r' || c >= 0x20;  // UTF-8 and Latin-1 text alike
  });
  if (!text || probe == 0) return "binary data of an unknown format";
  const std::size_t first = std::find_if(data, data + probe, [](std::uint8_t c) { return c > ' '; }) - data;
  if (first < probe && data[first] == '<') return "XML or HTML text";
  if (first < probe && (data[first] == '{' || data[first] == '[')) return "JSON text";
  return "text";
}


std::optional<ReadFailure> read_file_bytes(const std::string& path, std::uint64_t max_bytes,
                                           std::vector<std::uint8_t>& bytes) {
  // Only a regular file is opened and read: a FIFO, a device or a folder is looked at, never
  // opened (core::try_open_regular_file).
  const core::RegularFileOpening opened = core::try_open_regular_file(path);
  using Failure = core::RegularFileOpening::Failure;
  switch (opened.failure) {
    case Failure::kNone:
      break;
    case Failure::kNulInName:  // the system would read the name only up to it: another file
      return ReadFailure{Reason::kUnreadable, "the name holds a NUL byte, which no file name can; not read"};
    case Failure::kNotRegular:
      return ReadFailure{Reason::kUnreadable,
                         std::string("not a regular file: ") + core::file_kind(opened.mode) + "; not read"};
    case Failure::kOpen:
      return ReadFailure{Reason::kUnreadable,
                         std::string("cannot open the file: ") + std::strerror(opened.error)};
    case Failure::kStat:
      return ReadFailure{Reason::kUnreadable,
                         std::string("cannot stat the file: ") + std::strerror(opened.error)};
  }
  const core::FileDescriptor& file = opened.fd;
  const std::uint64_t size = opened.size;
  if (size > max_bytes) {
    return ReadFailure{Reason::kTooLarge, "the file is " + std::to_string(size) + " bytes; the limit is " +
                                              std::to_string(max_bytes) + " (validate.max_file_bytes); not read"};
  }
  bytes.resize(static_cast<std::size_t>(size));
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(file.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return ReadFailure{Reason::kUnreadable,
                         "read failed after " + std::to_string(done) + " bytes: " + std::strerror(errno)};
    }
    if (n == 0) break;  // the file shrank since fstat: what is there is the file
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return std::nullopt;
}

void validate_frames(const ValidationOptions& options, FileOutcome& outcome,
                     std::vector<DecodedImage>& frames) {
  if (!outcome.ok || frames.empty()) return;
  const DecodedImage& first = frames.front();
  if (std::min(first.height, first.width) < options.min_side) {
    reject(outcome, Reason::kTooSmall,
           std::to_string(first.width) + "x" + std::to_string(first.height) +
               " pixels; the smallest side must be at least " + std::to_string(options.min_side) +
               " (validate.min_side)");
    frames.clear();
    return;
  }
  // Blank: no frame has content above its own noise (see blank.h).
  ContentMeasure most;
  for (const auto& frame : frames) {
    const ContentMeasure m = measure_content(frame);
    if (m.ratio() >= most.ratio()) most = m;
    if (most.ratio() > options.blank_contrast_to_noise) break;
  }
  if (most.ratio() <= options.blank_contrast_to_noise) {
    reject(outcome, Reason::kBlank,
           (frames.size() > 1 ? "no frame has" : std::string("the image has no")) +
               std::string(" content above its noise: it spreads over ") + format_double(most.spread) +
               " grey levels, " + format_double(most.ratio()) + " times the noise of " +
               format_double(most.noise) + " (limit " + format_double(options.blank_contrast_to_noise) +
               ", validate.blank_contrast_to_noise)");
    frames.clear();
    return;
  }
  std::uint64_t h = 0;
  for (const auto& frame : frames) {
    const std::uint64_t shape[] = {
        static_cast<std::uint64_t>(frame.height), static_cast<std::uint64_t>(frame.width),
        static_cast<std::uint64_t>(frame.channels), static_cast<std::uint64_t>(frame.type)};
    h = hash64(shape, sizeof shape, h);
    h = hash64(frame.pixels.data(), frame.pixels.size(), h);
  }
  outcome.pixel_hash = h;
}

}  // namespace detail

FileOutcome decode_file(const SourceFile& source, const ValidationOptions& options,
                        std::vector<DecodedImage>& frames) {
  using detail::Format;
  FileOutcome outcome;
  note_source(source, outcome);
  if (source.outside_root && !options.allow_outside_root) {
    detail::reject(outcome, Reason::kOutsideRoot,
                   "the manifest path leaves the manifest's folder; not read (validate.allow_outside_root)");
    return outcome;
  }
  std::vector<std::uint8_t> bytes;
  if (const auto failure = detail::read_file_bytes(source.path, options.max_file_bytes, bytes)) {
    detail::reject(outcome, failure->reason, failure->detail);
    return outcome;
  }
  if (bytes.empty()) {
    detail::reject(outcome, Reason::kEmptyFile, "the file has 0 bytes");
    return outcome;
  }
  outcome.content_hash = content_hash(bytes.data(), bytes.size()).value_or(0);
  const Format format = detail::sniff_format(bytes.data(), bytes.size());
  if (format == Format::kUnknown) {
    // The file's own bytes never reach a report or a cache (they may be anything: /etc/passwd
    // listed by a hostile manifest); only what kind of content it looks like.
    detail::reject(outcome, Reason::kUnreadable,
                   "not an image format medload reads (PNG, JPEG, TIFF, BMP, DICOM): the content looks like " +
                       std::string(detail::describe_content(bytes.data(), bytes.size())));
    return outcome;
  }
  outcome.format = std::string(detail::format_name(format));
  const Format promised = detail::format_from_extension(source.path);
  if (promised != Format::kUnknown && promised != format) outcome.warnings.emplace_back("extension_mismatch");

  SampleInfo info = source.info;
  std::vector<DecodedImage> decoded;
  SampleInfo header;  // a DICOM header's fields; empty for raster formats
  detail::decode_format(format, source.path, bytes.data(), bytes.size(), options, outcome, decoded, header);
  // The manifest wins; the header fills what it leaves empty.
  detail::fill_missing(info.patient_id, header.patient_id);
  detail::fill_missing(info.modality, header.modality);
  detail::fill_missing(info.series_uid, header.series_uid);
  detail::fill_missing(info.view, header.view);
  detail::fill_missing(info.site, header.site);
  detail::validate_frames(options, outcome, decoded);
  detail::check_targets(source, options, outcome, decoded);
  for (auto& frame : decoded) {
    frame.source_path = source.report_path;
    frame.source_hash = outcome.content_hash;
    frame.info = info;
    frames.push_back(std::move(frame));
  }
  return outcome;
}

}  // namespace medload::loader
