#pragma once
/// Text from outside (manifests, file names, DICOM headers) as valid UTF-8. Reports, the cache's
/// string columns and JSON need UTF-8 (nlohmann::json refuses to dump anything else), while
/// spreadsheets export Windows-1252 and Linux file names are any bytes. One rule everywhere:
/// every valid UTF-8 sequence is kept, and every byte that is not part of one is read as
/// Windows-1252 (0x80-0x9F as CP1252, the five bytes CP1252 leaves undefined and 0xA0-0xFF as
/// Latin-1). A lossless form (percent-escapes) keeps the original bytes findable.

#include <string>
#include <string_view>

namespace medload {

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
/// above U+10FFFF). The empty string is valid.
bool is_valid_utf8(std::string_view text) noexcept;

/// Every byte of `text` read as Windows-1252, as UTF-8 (ASCII bytes stay as they are).
std::string utf8_from_windows1252(std::string_view text);

/// `text` when it is valid UTF-8; otherwise `text` with every byte that is not part of a valid
/// UTF-8 sequence read as Windows-1252. `converted` (when given) says whether anything changed.
std::string to_valid_utf8(std::string_view text, bool* converted = nullptr);

/// A lossless ASCII-safe form of bytes that may not be UTF-8: every byte that is not part of a
/// valid UTF-8 sequence, and every '%', becomes %XX (two uppercase hex digits); valid UTF-8
/// sequences stay as they are. percent_unescape() gives the bytes back.
std::string percent_escape_non_utf8(std::string_view bytes);

/// The inverse of percent_escape_non_utf8: every %XX (two hex digits, either case) becomes that
/// byte; a '%' not followed by two hex digits stays as it is.
std::string percent_unescape(std::string_view text);

}  // namespace medload
