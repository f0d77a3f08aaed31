#pragma once
// Metadata columns of a cache: which values are missing, how they are imputed (ImputePolicy),
// shared by build_cache and merge_caches (a merge re-imputes over all shards together, so a
// merged cache equals a single build).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"

namespace medload::loader::detail {

/// Per sample, the metadata values the sources gave (a missing or empty value is absent).
using RawMeta = std::vector<std::map<std::string, std::string>>;

/// Builds one MetaColumn per name in `names` (every name, even when all values are missing).
/// `labels` (single-label index or -1) groups the class-wise policies. `imputed` (when given)
/// receives the filled count per column.
std::vector<MetaColumn> impute_columns(const RawMeta& raw, const std::vector<std::string>& names,
                                       const std::vector<std::int64_t>& labels, ImputePolicy policy,
                                       std::map<std::string, std::size_t>* imputed);

/// Turns stored columns back into raw values, leaving out the imputed ones (for re-imputation).
void columns_to_raw(const std::vector<MetaColumn>& columns, RawMeta& raw);

}  // namespace medload::loader::detail
