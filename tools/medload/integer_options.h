#pragma once
// Integer options that mean what they say. CLI11 2.1 reads integers with strtoull and strtoll in
// base 0: "-1" given to an unsigned option becomes 2^64 - 1, a value past the type's range
// saturates, "0x10" is sixteen and "010" is octal 8. medload's command and its examples take
// decimal digits only.

#include <CLI/CLI.hpp>

namespace medload::cli {

/// Puts a check before every other check (ranges) of each integer option of `app` and of its
/// subcommands (CLI11 names their types UINT and INT), added so far: the value must be decimal
/// digits (a leading '-' for a signed option) within the type's range, or the parse fails naming
/// the option ("--seed: -1 is negative; a whole number from 0 is expected"); leading zeros are
/// dropped, so "010" is ten. Call it after the options are added, before parsing.
void require_decimal_integers(CLI::App& app);

}  // namespace medload::cli
