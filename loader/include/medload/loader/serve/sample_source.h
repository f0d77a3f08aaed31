#pragma once
/// What medload's Loader reads from: N samples of one fixed shape, each read by index into a
/// caller's buffer from any thread. CacheDataset is one (a split of an HDF5 cache); tests and
/// custom stores can provide others.

#include <cstddef>
#include <cstdint>
#include <string>

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
  /// 0: one int64 class label per sample (-1 = unlabeled); K > 0: a row of K 0/1 labels.
  virtual std::size_t label_columns() const = 0;
  /// Writes sample `index`'s label (1 value, or label_columns() values) to `out`.
  virtual void label(std::size_t index, std::int64_t* out) const = 0;
  /// The stable id of sample `index` (its row in the cache): what augmentation seeds on.
  virtual std::int64_t sample_id(std::size_t index) const = 0;
  /// Names sample `index` for error messages: "sample 17 (pneumonia/p3.png) of cache.h5".
  virtual std::string describe(std::size_t index) const = 0;
};

}  // namespace medload::loader
