#pragma once
/// The secret key of patient-id pseudonymisation (docs/privacy.md): a keyed hash (HMAC-SHA-256,
/// OpenSSL's libcrypto) turns every patient id into a pseudonym that is the same in every build,
/// shard and incremental rebuild made with the same key, and that nobody without the key can
/// reverse or confirm by hashing guessed ids (a plain, unkeyed hash of an id can be brute-forced:
/// patient ids are short and structured).
///
/// A key file holds the key as hexadecimal text: 64 to 1024 hex digits (32 to 512 random bytes),
/// optionally followed by one line break. `medload keygen` writes one; so does
/// `(umask 077; openssl rand -hex 32 > medload.key)`. A key file must be a regular file (not a
/// symbolic link, FIFO or folder) that neither its group nor others may read or write (mode 0600
/// or 0400).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace medload::loader {

/// Hex digits of a pseudonym: the first 128 bits of the HMAC, lowercase hex. Two distinct ids of
/// a cohort share a pseudonym with probability about n^2 / 2^129 (for a million patients, 1e-27).
inline constexpr std::size_t kPseudonymHexDigits = 32;
/// Shortest key: 32 bytes (256 bits, SHA-256's output size; RFC 2104 advises at least that).
inline constexpr std::size_t kMinKeyBytes = 32;
/// Longest key: 512 bytes. A longer key adds nothing (HMAC hashes keys longer than a block).
inline constexpr std::size_t kMaxKeyBytes = 512;
/// Largest key file read: the longest key in hex plus a line break, with room to spare.
inline constexpr std::size_t kMaxKeyFileBytes = 4096;

/// A pseudonymisation key, loaded and checked. Copies share nothing; the bytes are wiped
/// (OPENSSL_cleanse) when a key is destroyed. It never leaves the process: the cache records only
/// its fingerprint().
class PseudonymKey {
 public:
  /// A key made of `bytes` (kMinKeyBytes..kMaxKeyBytes of them, not all equal). Throws
  /// ConfigError naming `option` and the problem (never the key's bytes).
  static PseudonymKey from_bytes(std::vector<std::uint8_t> bytes, const std::string& option = "key");

  /// Reads the key file at `path` (see the file comment for its form). Throws ConfigError whose
  /// message starts with `option` (e.g. "--pseudonymize") and names the file and the problem:
  /// missing, a symbolic link, not a regular file, readable or writable by group or others, empty,
  /// larger than kMaxKeyFileBytes, not hexadecimal text, shorter than kMinKeyBytes. The message
  /// never quotes the file's content.
  static PseudonymKey load(const std::string& path, const std::string& option = "--pseudonymize");

  PseudonymKey(const PseudonymKey& other);
  PseudonymKey& operator=(const PseudonymKey& other);
  PseudonymKey(PseudonymKey&& other) noexcept;
  PseudonymKey& operator=(PseudonymKey&& other) noexcept;
  ~PseudonymKey();

  /// The pseudonym of a patient id: kPseudonymHexDigits lowercase hex digits of
  /// HMAC-SHA-256(key, "medload/patient_id/v1" 0x00 id). The id's bytes are hashed as they are
  /// (any bytes, not only UTF-8); callers normalise first (normalize_patient_id). An empty id
  /// stays empty: "no patient id" is not a patient.
  std::string pseudonym(std::string_view patient_id) const;

  /// A stand-in for a source path: kPseudonymHexDigits hex digits of
  /// HMAC-SHA-256(key, "medload/source_path/v1" 0x00 path), followed by the path's extension
  /// when it is 1 to 5 ASCII letters or digits (".dcm", ".png"), lower-cased. The same path gives
  /// the same stand-in in every build with the key.
  std::string path_token(std::string_view path) const;

  /// 16 hex digits of HMAC-SHA-256(key, "medload/key_fingerprint/v1"): identifies the key (a
  /// rebuild or merge with another key is refused) and reveals nothing about any patient id.
  std::string fingerprint() const;

  /// Keyed hash of arbitrary text under a `label` (domain separation), 16 hex digits; used for
  /// the identity of a site map recorded in a cache.
  std::string keyed_digest(std::string_view label, std::string_view text) const;

 private:
  explicit PseudonymKey(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {}
  void wipe() noexcept;

  std::vector<std::uint8_t> bytes_;
};

/// Writes a new key of `bytes` random bytes (kMinKeyBytes..kMaxKeyBytes, from OpenSSL's CSPRNG)
/// to `path` as hex text and a line break, created with mode 0600 and flushed to disk. Never
/// replaces anything: an existing path (file, link or folder) is refused, since pseudonyms made
/// with a lost key cannot be made again. Returns the key's fingerprint. Throws ConfigError (bad
/// `bytes`, `path` exists), IoError (cannot create or write it).
std::string write_new_key_file(const std::string& path, std::size_t bytes = kMinKeyBytes);

}  // namespace medload::loader
