#pragma once
/// What medload's Loader reads from: N samples of one fixed shape, each read by index into a
/// caller's buffer from any thread, optionally with targets (a label mask, boxes, landmarks).
/// CacheDataset is one (a split of an HDF5 cache); tests and custom stores can provide others.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "medload/loader/ingest/annotation.h"

namespace medload::loader {

/// Element type of the stored pixels.
enum class PixelDepth : std::uint8_t {
  kUInt8 = 1,   ///< 8-bit pixels (scale 1/255)
  kUInt16 = 2,  ///< 16-bit pixels (scale 1/65535)
};

/// How a stored sample is laid out: [channels, height, width], row-major, channels planar.
struct SampleLayout {
  /// Channels (1 for grayscale).
  std::int64_t channels = 1;
  /// Rows.
  std::int64_t height = 0;
  /// Columns.
  std::int64_t width = 0;
  /// Pixel type.
  PixelDepth depth = PixelDepth::kUInt8;

  /// Pixels per sample.
  std::size_t pixels() const noexcept {
    return static_cast<std::size_t>(channels) * static_cast<std::size_t>(height) *
           static_cast<std::size_t>(width);
  }
  /// Bytes per sample.
  std::size_t bytes() const noexcept { return pixels() * static_cast<std::size_t>(depth); }
};

/// What a sample becomes when served.
struct SampleOutput {
  /// True: float32 = (pixel * scale - mean) / std. False: the raw uint8 pixels (8-bit data only).
  bool as_float = true;
  /// Multiplies the raw pixel first: 1/255 or 1/65535, so values are in [0, 1].
  float scale = 1.0f / 255.0f;
  /// Subtracted after scaling (0 = no normalization).
  float mean = 0.0f;
  /// Divides after subtracting the mean (1 = no normalization); > 0.
  float std = 1.0f;
  /// Label masks served as uint8 instead of int64 (8x smaller; every class id must be < 256).
  bool masks_uint8 = false;
};

/// Which targets a source serves besides its images (medload/loader/ingest/annotation.h). A kind
/// it serves has a TargetState for every sample; a kind it does not serve is absent from batches.
struct TargetKinds {
  /// Label masks: one uint16 class id per pixel, [H,W] (read_mask).
  bool masks = false;
  /// Boxes in output-grid pixel coordinates (boxes).
  bool boxes = false;
  /// Landmarks in output-grid pixel coordinates (landmarks).
  bool landmarks = false;
  /// Class ids are 0..classes-1 (0 = background); 0 = not known (any id up to 65535).
  std::size_t classes = 0;

  /// True when it serves any kind.
  bool any() const noexcept { return masks || boxes || landmarks; }
};

/// N samples, read by index. Implementations are immutable once built and their reads are
/// thread-safe: the Loader calls `read` from several threads at once.
class SampleSource {
 public:
  virtual ~SampleSource() = default;

  /// Number of samples (indices are 0..size()-1).
  virtual std::size_t size() const = 0;
  /// The layout every sample has.
  virtual SampleLayout layout() const = 0;
  /// How samples are served (float normalized, or raw uint8).
  virtual SampleOutput output() const = 0;
  /// Reads sample `index`'s raw pixels (layout().bytes() bytes) into `out`. Thread-safe.
  /// Throws (an Error naming the sample and the file) when the sample cannot be read.
  virtual void read(std::size_t index, void* out) const = 0;
  /// 0: one int64 class label per sample (-1 = unlabeled); K > 0: a row of K labels, each 1
  /// (present), 0 (absent) or -1 (unknown for that label: not known to be present or absent).
  virtual std::size_t label_columns() const = 0;
  /// Writes sample `index`'s label (1 value, or label_columns() values) to `out`. In a row, -1
  /// means the value of that label is unknown for this sample (the manifest's `unknown_labels`,
  /// or every label of an unlabeled sample): a loss must leave it out, not take it as a negative
  /// (the loader turns it into a validity mask).
  virtual void label(std::size_t index, std::int64_t* out) const = 0;
  /// The stable id of sample `index` (its row in the cache): what augmentation seeds on.
  virtual std::int64_t sample_id(std::size_t index) const = 0;
  /// Names sample `index` for error messages: "sample 17 (pneumonia/p3.png) of cache.h5".
  virtual std::string describe(std::size_t index) const = 0;

  // ---- targets (optional; docs/serve.md, "Targets") --------------------------------------------
  // A source that serves targets overrides targets() and the readers of the kinds it names. The
  // readers are thread-safe like read() and throw like it (an Error naming the sample).

  /// The kinds of target it serves; none by default.
  virtual TargetKinds targets() const { return {}; }
  /// Reads sample `index`'s label mask into `out` (layout().height * layout().width uint16 class
  /// ids, [H,W] row-major, 0 = background) and returns its state; a mask that is not kValid reads
  /// as zeros. Default (no masks): zeros, kNone.
  virtual TargetState read_mask(std::size_t index, std::uint16_t* out) const {
    static_cast<void>(index);
    std::fill_n(out, static_cast<std::size_t>(layout().height) * static_cast<std::size_t>(layout().width),
                std::uint16_t{0});
    return TargetState::kNone;
  }
  /// Replaces `out` with sample `index`'s boxes (output-grid pixels, continuous coordinates as in
  /// annotation.h; labels >= 1) and returns their state; empty unless kValid (and then possibly
  /// empty: a negative image). Default (no boxes): empty, kNone.
  virtual TargetState boxes(std::size_t index, std::vector<Box>& out) const {
    static_cast<void>(index);
    out.clear();
    return TargetState::kNone;
  }
  /// The same for landmarks. Default (no landmarks): empty, kNone.
  virtual TargetState landmarks(std::size_t index, std::vector<Landmark>& out) const {
    static_cast<void>(index);
    out.clear();
    return TargetState::kNone;
  }
};

}  // namespace medload::loader
