// The split table's file-level entry points: open the cache, go through the schema (schema.h),
// close. The split store (medload::loader_split) uses them and so needs no HDF5 of its own.

#include "medload/loader/cache/split_table.h"

#include <algorithm>

#include "h5.h"
#include "medload/core/error.h"
#include "schema.h"

namespace medload::loader {

void check_split_name(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    throw ConfigError("split name \"" + name + "\" is not a plain name");
  }
}

void write_split_table(const std::string& path, const SplitTable& split, const std::string& shown_as) {
  h5::silence_errors();
  h5::File file = h5::File::open(path, /*read_write=*/true);
  schema::write_split(file.id(), split, shown_as.empty() ? path : shown_as);
  // Every object is closed by now: with one still open, H5Fclose only marks the file, the real
  // flush happens when that object closes, and a full disk there would go unnoticed.
  file.close();
}

std::vector<std::string> split_table_names(const std::string& path) {
  return schema::split_names(schema::CacheFile(path));
}

SplitTable read_split_table(const std::string& path, const std::string& name, std::size_t expected_size) {
  const schema::CacheFile file(path);
  const std::vector<std::string> names = schema::split_names(file);
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    std::string there;
    for (const auto& n : names) there += (there.empty() ? "" : ", ") + n;
    throw ConfigError("the cache " + path + " has no split \"" + name + "\" (" +
                      (names.empty() ? std::string("it has no splits; run `medload split " + path + "`")
                                     : "it has: " + there) +
                      ")");
  }
  return schema::read_split(file, name, expected_size != 0 ? expected_size : schema::kStoredLength);
}

}  // namespace medload::loader
