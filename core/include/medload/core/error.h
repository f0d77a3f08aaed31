#pragma once
/// medload's exception hierarchy. Programming and environment errors are exceptions; bad input
/// data in a batch job is not: it becomes an outcome in a report.
///
/// Every message names what it is about: the file, the HDF5 object, the config field and value.

#include <stdexcept>
#include <string>

namespace medload {

/// The root of every exception medload throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file or device could not be opened, read, written or renamed.
class IoError : public Error {
 public:
  using Error::Error;
};

/// A file's content is not what its format requires (a broken cache, a newer schema, ...).
class FormatError : public Error {
 public:
  using Error::Error;
};

/// An option or config value is missing, unknown or out of its allowed range.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// The HDF5 library reported an error; the message names the file and the object.
class HdfError : public IoError {
 public:
  using IoError::IoError;
};

/// A worker (reader, decoder, augmentation) failed; the message names the sample.
class WorkerError : public Error {
 public:
  using Error::Error;
};

}  // namespace medload
