#include "medload/loader/cache/pseudonym_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "medload/core/error.h"
#include "medload/core/file_descriptor.h"

namespace medload::loader {

namespace {

using core::FileDescriptor;

constexpr char kHex[] = "0123456789abcdef";

std::string to_hex(const std::uint8_t* bytes, std::size_t n) {
  std::string out(2 * n, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string system_reason() { return std::strerror(errno); }

std::string mode_text(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// HMAC-SHA-256(key, label 0x00 text).
std::vector<std::uint8_t> hmac(const std::vector<std::uint8_t>& key, std::string_view label,
                               std::string_view text) {
  std::string message;
  message.reserve(label.size() + 1 + text.size());
  message.append(label);
  message.push_back('\0');
  message.append(text);
  std::vector<std::uint8_t> out(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &length) == nullptr ||
      length != 32) {
    throw Error("OpenSSL's HMAC-SHA-256 failed");
  }
  out.resize(length);
  return out;
}

std::string hmac_hex(const std::vector<std::uint8_t>& key, std::string_view label, std::string_view text,
                     std::size_t digits) {
  const std::vector<std::uint8_t> mac = hmac(key, label, text);
  return to_hex(mac.data(), digits / 2);
}

// The key in the file's text: hex digits, then at most one line break ("\n" or "\r\n").
std::vector<std::uint8_t> parse_key_text(std::string text, const std::string& where) {
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) throw ConfigError(where + " holds no key (only a line break)");
  // The text is wiped on every path out: it is the key.
  struct Wipe {
    std::string& text;
    ~Wipe() {
      if (!text.empty()) OPENSSL_cleanse(text.data(), text.size());
    }
  } wipe{text};
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (hex_value(text[i]) < 0) {
      throw ConfigError(where + " is not a medload key: byte " + std::to_string(i + 1) +
                        " is not a hexadecimal digit (a key file holds " + std::to_string(2 * kMinKeyBytes) +
                        " to " + std::to_string(2 * kMaxKeyBytes) +
                        " hex digits and one line break; make one with `medload keygen -o FILE`)");
    }
  }
  if (text.size() % 2 != 0) {
    throw ConfigError(where + " holds an odd number of hex digits (" + std::to_string(text.size()) +
                      "); a key is whole bytes, two digits each");
  }
  std::vector<std::uint8_t> bytes(text.size() / 2);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] = static_cast<std::uint8_t>(hex_value(text[2 * i]) * 16 + hex_value(text[2 * i + 1]));
  }
  return bytes;
}

}  // namespace

PseudonymKey PseudonymKey::from_bytes(std::vector<std::uint8_t> bytes, const std::string& option) {
  const std::size_t n = bytes.size();
  auto reject = [&](const std::string& why) {
    if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
    throw ConfigError(option + ": " + why);
  };
  if (n < kMinKeyBytes) {
    reject("the key has " + std::to_string(n) + " bytes; at least " + std::to_string(kMinKeyBytes) + " (" +
           std::to_string(2 * kMinKeyBytes) +
           " hex digits) are needed so that pseudonyms cannot be found by guessing the key; make one "
           "with `medload keygen -o FILE`");
  }
  if (n > kMaxKeyBytes) {
    reject("the key has " + std::to_string(n) + " bytes; at most " + std::to_string(kMaxKeyBytes) +
           " are used");
  }
  if (std::all_of(bytes.begin(), bytes.end(), [&](std::uint8_t b) { return b == bytes[0]; })) {
    reject("the key repeats one byte value " + std::to_string(n) +
           " times; it is not random (make one with `medload keygen -o FILE`)");
  }
  return PseudonymKey(std::move(bytes));
}

PseudonymKey PseudonymKey::load(const std::string& path, const std::string& option) {
  const std::string where = option + ": the key file " + path;
  if (path.empty()) throw ConfigError(option + ": the key file's name is empty");
  struct stat link {};
  if (::lstat(path.c_str(), &link) != 0) throw ConfigError(where + " cannot be read: " + system_reason());
  if (S_ISLNK(link.st_mode)) {
    throw ConfigError(where +
                      " is a symbolic link; give the key file itself (a link can be pointed elsewhere, and "
                      "its target's permissions are the ones that protect the key)");
  }
  if (!S_ISREG(link.st_mode))
    throw ConfigError(where + " is " + file_kind(link.st_mode) + ", not a key file");
  // O_NOFOLLOW and O_NONBLOCK: a file swapped for a link or a FIFO since lstat neither redirects
  // nor blocks the open; fstat then judges what was really opened.
  FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) throw ConfigError(where + " cannot be opened: " + system_reason());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw ConfigError(where + " cannot be read: " + system_reason());
  if (!S_ISREG(st.st_mode)) throw ConfigError(where + " is " + file_kind(st.st_mode) + ", not a key file");
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    throw ConfigError(where + " may be read or written by its group or others (mode " +
                      mode_text(st.st_mode) +
                      "); a pseudonymisation key must be private to its owner: chmod 600 " + path);
  }
  if (st.st_size == 0)
    throw ConfigError(where + " is empty; make a key with `medload keygen -o " + path + "`");
  if (static_cast<std::uint64_t>(st.st_size) > kMaxKeyFileBytes) {
    throw ConfigError(where + " has " + std::to_string(st.st_size) + " bytes; a key file holds at most " +
                      std::to_string(2 * kMaxKeyBytes) + " hex digits and a line break");
  }
  std::string text(kMaxKeyFileBytes + 1, '\0');
  std::size_t have = 0;
  while (have < text.size()) {
    const ssize_t got = ::read(fd.get(), text.data() + have, text.size() - have);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw ConfigError(where + " cannot be read: " + system_reason());
    if (got == 0) break;
    have += static_cast<std::size_t>(got);
  }
  if (have > kMaxKeyFileBytes) {
    OPENSSL_cleanse(text.data(), text.size());
    throw ConfigError(where + " grew past " + std::to_string(kMaxKeyFileBytes) + " bytes while being read");
  }
  text.resize(have);
  if (text.empty()) throw ConfigError(where + " is empty; make a key with `medload keygen -o " + path + "`");
  return from_bytes(parse_key_text(std::move(text), where), where);
}

PseudonymKey::PseudonymKey(const PseudonymKey& other) : bytes_(other.bytes_) {}
PseudonymKey& PseudonymKey::operator=(const PseudonymKey& other) {
  if (this != &other) {
    wipe();
    bytes_ = other.bytes_;
  }
  return *this;
}
PseudonymKey::PseudonymKey(PseudonymKey&& other) noexcept : bytes_(std::move(other.bytes_)) {
  other.bytes_.clear();
}
PseudonymKey& PseudonymKey::operator=(PseudonymKey&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}
PseudonymKey::~PseudonymKey() { wipe(); }

void PseudonymKey::wipe() noexcept {
  if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
}

std::string PseudonymKey::pseudonym(std::string_view patient_id) const {
  if (patient_id.empty()) return "";
  return hmac_hex(bytes_, "medload/patient_id/v1", patient_id, kPseudonymHexDigits);
}

std::string PseudonymKey::path_token(std::string_view path) const {
  std::string token = hmac_hex(bytes_, "medload/source_path/v1", path, kPseudonymHexDigits);
  const std::size_t slash = path.find_last_of('/');
  const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const std::size_t dot = name.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0) return token;
  const std::string_view extension = name.substr(dot + 1);
  if (extension.empty() || extension.size() > 5) return token;
  std::string lower;
  for (char c : extension) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alnum) return token;
    lower.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
  }
  return token + "." + lower;
}

std::string PseudonymKey::fingerprint() const {
  return hmac_hex(bytes_, "medload/key_fingerprint/v1", "", 16);
}

std::string PseudonymKey::keyed_digest(std::string_view label, std::string_view text) const {
  return hmac_hex(bytes_, label, text, 16);
}

std::string write_new_key_file(const std::string& path, std::size_t bytes) {
  if (bytes < kMinKeyBytes || bytes > kMaxKeyBytes) {
    throw ConfigError("--bytes is " + std::to_string(bytes) + "; allowed " + std::to_string(kMinKeyBytes) +
                      ".." + std::to_string(kMaxKeyBytes));
  }
  if (path.empty()) throw ConfigError("the key file to write is empty; give a file name");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    throw ConfigError(path +
                      " exists; medload keygen never replaces a key (pseudonyms made with a lost key cannot "
                      "be made again): remove it yourself or choose another name");
  }
  std::vector<std::uint8_t> key(bytes);
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    throw Error("OpenSSL's random generator could not produce " + std::to_string(bytes) + " bytes");
  }
  std::string text = to_hex(key.data(), key.size()) + "\n";
  const PseudonymKey made = PseudonymKey::from_bytes(std::move(key), "keygen");
  // O_EXCL | O_NOFOLLOW: a file or link that appeared since lstat is never written through.
  FileDescriptor fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) {
    const std::string reason = system_reason();
    OPENSSL_cleanse(text.data(), text.size());
    throw IoError("cannot create the key file " + path + ": " + reason);
  }
  auto fail = [&](const std::string& what) {
    const std::string reason = system_reason();
    OPENSSL_cleanse(text.data(), text.size());
    ::unlink(path.c_str());
    throw IoError("cannot " + what + " the key file " + path + ": " + reason);
  };
  if (::fchmod(fd.get(), 0600) != 0) fail("set the permissions of");  // whatever the umask
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t wrote = ::write(fd.get(), text.data() + done, text.size() - done);
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) fail("write");
    done += static_cast<std::size_t>(wrote);
  }
  if (::fsync(fd.get()) != 0) fail("flush");
  OPENSSL_cleanse(text.data(), text.size());
  return made.fingerprint();
}

}  // namespace medload::loader
