// decode_jpeg_without_end and check_jpeg_end: libjpeg-turbo reads every scan of a JPEG that
// lacks FF D9, and the warnings it raises while doing so say whether data was missing.
//
// One pass where it can: for gray and YCbCr/RGB files (nearly all), decode_jpeg_without_end
// decodes straight into the destination while judging, so a usable file costs one decode, as
// through OpenCV. Its output is OpenCV's: the same libjpeg-turbo, the same defaults, the same
// output colour space (JCS_GRAYSCALE, or JCS_EXT_BGR as OpenCV asks for with libjpeg-turbo);
// the tests compare the two. Other files (CMYK, Adobe YCCK, odd component counts) are judged by
// check_jpeg_end, through jpeg_read_coefficients, which runs the entropy decoder over every scan
// (the part that meets the end of the data) in any colour space, and OpenCV then decodes the
// bytes with FF D9 restored, so their pixels are what OpenCV gives by construction.
//
// What the warnings mean with jpeg_mem_src: reading past the last byte raises JWRN_JPEG_EOF
// and feeds the decoder a fake EOI. A complete scan without its trailer raises that too (the
// Huffman decoder reads ahead, and the marker reader looks for EOI), so it is not evidence of
// loss. Missing data is JWRN_HIT_MARKER: a scan needed bits and found a marker (the fake EOI, or
// a real one in the middle of the data), and libjpeg fills the rest of the image grey.

#include "end_check.h"

#include <cstring>

// clang-format off
#include <cstdio>  // jpeglib.h uses FILE without including stdio.h
#include <csetjmp>
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

namespace medload::loader::detail {

namespace {

// libjpeg's error manager plus what the check records. Plain data: it lives across a longjmp.
struct Reader {
  jpeg_error_mgr manager;  // first, so libjpeg's pointer to it is a pointer to the Reader
  std::jmp_buf jump;
  bool read_past_end;  // JWRN_JPEG_EOF: libjpeg asked for bytes after the last one
  bool ran_out;        // JWRN_HIT_MARKER: a scan needed data that was not there
  int ran_out_scan;    // the scan (1-based) and iMCU row (0-based) where it ran out
  unsigned ran_out_row;
  char message[JMSG_LENGTH_MAX];  // the fatal error, when there was one
};

Reader& reader_of(j_common_ptr cinfo) { return *reinterpret_cast<Reader*>(cinfo->err); }

// Fatal errors return to read_all through longjmp: libjpeg's default calls exit(), which would
// end a worker process instead of rejecting one file.
void on_error(j_common_ptr cinfo) {
  Reader& reader = reader_of(cinfo);
  (*cinfo->err->format_message)(cinfo, reader.message);
  std::longjmp(reader.jump, 1);
}

// Warnings are recorded, never printed (a scan of 100,000 files would flood stderr).
void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace output
  Reader& reader = reader_of(cinfo);
  ++cinfo->err->num_warnings;
  const int code = cinfo->err->msg_code;
  if (code == JWRN_JPEG_EOF) reader.read_past_end = true;
  if (code == JWRN_HIT_MARKER && !reader.ran_out) {
    const auto* decompress = reinterpret_cast<j_decompress_ptr>(cinfo);
    reader.ran_out = true;
    reader.ran_out_scan = decompress->input_scan_number;
    reader.ran_out_row = decompress->input_iMCU_row;
  }
}

void ignore_output(j_common_ptr) {}

enum class Step { kRead, kFailed, kArithmetic, kUnhandled };

// Points libjpeg's error handling at `reader` (before jpeg_create_decompress).
void install(jpeg_decompress_struct& cinfo, Reader& reader) {
  cinfo.err = jpeg_std_error(&reader.manager);
  reader.manager.error_exit = on_error;
  reader.manager.emit_message = on_message;
  reader.manager.output_message = ignore_output;
}

// Reads the header and all coefficients of every scan. setjmp lives in this small function
// whose locals are all plain, so the longjmp from on_error skips no C++ destructor; cinfo and
// reader belong to the caller, which destroys cinfo whatever happens here.
Step read_all(jpeg_decompress_struct* cinfo, Reader* reader, const std::uint8_t* data, std::size_t size) {
  if (setjmp(reader->jump) != 0) return Step::kFailed;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->arith_code) return Step::kArithmetic;
  jpeg_read_coefficients(cinfo);
  return Step::kRead;
}

// The output colour space that gives what OpenCV's decoder gives (imdecode, IMREAD_UNCHANGED:
// gray for one component, B,G,R for three), or JCS_UNKNOWN for a file OpenCV converts in a way
// not repeated here (CMYK, YCCK, two components).
J_COLOR_SPACE opencv_output(const jpeg_decompress_struct& cinfo, int channels) {
  if (channels == 1 && cinfo.num_components == 1) return JCS_GRAYSCALE;
  const bool three = cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB;
  if (channels == 3 && cinfo.num_components == 3 && three) return JCS_EXT_BGR;
  return JCS_UNKNOWN;
}

// As read_all, decoding every scanline into `target` instead of keeping coefficients (a file
// with several scans is absorbed whole by jpeg_start_decompress, so its verdict is as complete).
// The same rules on setjmp hold here.
Step decode_all(jpeg_decompress_struct* cinfo, Reader* reader, const std::uint8_t* data, std::size_t size,
                const JpegTarget* target) {
  if (setjmp(reader->jump) != 0) return Step::kFailed;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->arith_code) return Step::kArithmetic;
  const J_COLOR_SPACE output = opencv_output(*cinfo, target->channels);
  if (output == JCS_UNKNOWN) return Step::kUnhandled;
  cinfo->out_color_space = output;
  jpeg_start_decompress(cinfo);
  if (cinfo->output_height != static_cast<JDIMENSION>(target->height) ||
      cinfo->output_width != static_cast<JDIMENSION>(target->width) ||
      cinfo->output_components != target->channels) {
    return Step::kUnhandled;
  }
  const std::size_t row_bytes =
      static_cast<std::size_t>(target->width) * static_cast<std::size_t>(target->channels);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = target->pixels + cinfo->output_scanline * row_bytes;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  return Step::kRead;
}

// The first component and coefficient a progressive file never refined to full precision
// (coef_bits: -1 = never sent, else the last scan's Al), or -1 when every one is complete.
int first_unrefined(const jpeg_decompress_struct& cinfo, int& coefficient) {
  if (!cinfo.progressive_mode || cinfo.coef_bits == nullptr) return -1;
  for (int c = 0; c < cinfo.num_components; ++c) {
    for (int k = 0; k < DCTSIZE2; ++k) {
      if (cinfo.coef_bits[c][k] != 0) {
        coefficient = k;
        return c;
      }
    }
  }
  return -1;
}

EndCheck incomplete(Reason reason, std::string detail) {
  EndCheck check;
  check.reason = reason;
  check.detail = std::move(detail);
  return check;
}

// The verdict from what read_all left in cinfo and reader.
EndCheck judge(Step step, const jpeg_decompress_struct& cinfo, const Reader& reader) {
  const std::string ending = "the JPEG ends without its end-of-image marker (FF D9) and ";
  if (step == Step::kArithmetic) {
    return incomplete(Reason::kTruncated,
                      ending +
                          "is arithmetic-coded: its decoder pads missing data without a sign, so "
                          "whether all rows are there cannot be told");
  }
  if (step == Step::kFailed) {
    // A failure after reading past the end is the end of the data; before it, a malformed file.
    return incomplete(reader.read_past_end ? Reason::kTruncated : Reason::kUnreadable,
                      (reader.read_past_end ? ending + "its data ends early: " : std::string("libjpeg: ")) +
                          reader.message);
  }
  if (reader.ran_out) {
    const unsigned rows_per_imcu = static_cast<unsigned>(cinfo.max_v_samp_factor) * DCTSIZE;
    return incomplete(Reason::kTruncated,
                      ending + "its scan data runs out in MCU row " + std::to_string(reader.ran_out_row + 1) +
                          " of " + std::to_string(cinfo.total_iMCU_rows) + " (pixel row " +
                          std::to_string(reader.ran_out_row * rows_per_imcu) + " of " +
                          std::to_string(cinfo.image_height) + ", scan " +
                          std::to_string(reader.ran_out_scan) + "); the decoder would fill the rest grey");
  }
  int coefficient = 0;
  if (const int component = first_unrefined(cinfo, coefficient); component >= 0) {
    return incomplete(Reason::kTruncated, ending + "the progressive data stops after scan " +
                                              std::to_string(cinfo.input_scan_number) +
                                              ", before every coefficient is complete (component " +
                                              std::to_string(component + 1) + ", coefficient " +
                                              std::to_string(coefficient) + ")");
  }
  EndCheck check;
  check.complete = true;
  return check;
}

}  // namespace

EndCheck check_jpeg_end(const std::uint8_t* data, std::size_t size) {
  Reader reader{};
  jpeg_decompress_struct cinfo{};
  install(cinfo, reader);
  const Step step = read_all(&cinfo, &reader, data, size);
  EndCheck check = judge(step, cinfo, reader);
  jpeg_destroy_decompress(&cinfo);
  return check;
}

EndCheck decode_jpeg_without_end(const std::uint8_t* data, std::size_t size, const JpegTarget& target,
                                 bool& handled) {
  Reader reader{};
  jpeg_decompress_struct cinfo{};
  install(cinfo, reader);
  const Step step = decode_all(&cinfo, &reader, data, size, &target);
  handled = step != Step::kUnhandled;
  EndCheck check = handled ? judge(step, cinfo, reader) : EndCheck{};
  jpeg_destroy_decompress(&cinfo);
  return check;
}

std::vector<std::uint8_t> restore_jpeg_end(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> bytes(size + 2);
  std::memcpy(bytes.data(), data, size);
  bytes[size] = 0xFF;
  bytes[size + 1] = 0xD9;
  return bytes;
}

}  // namespace medload::loader::detail
