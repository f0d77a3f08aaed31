#pragma once
// The `medload` command: each subcommand lives in its own <name>_command.cpp, which declares its
// options on the CLI11 subcommand it is given and returns the function that runs it once the
// command line has been parsed. Commands parse options and call library functions; nothing else.

#include <functional>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace CLI {
class App;
}

namespace medload::cli {

/// Exit codes of every subcommand (DESIGN.md, command-line contract).
enum ExitCode : int {
  kExitOk = 0,       ///< success
  kExitFailure = 1,  ///< the work failed (I/O error, broken cache, ...)
  kExitUsage = 2,    ///< a bad option or config value; the message names it
  kExitLeakage = 3,  ///< `medload audit` found leakage between splits
};

/// Runs a parsed subcommand and returns its exit code. Library exceptions are mapped by main():
/// ConfigError -> kExitUsage, any other exception -> kExitFailure.
using Runner = std::function<int()>;

/// JSON as a command prints or writes it: indented by 2. Text reaches it as UTF-8 (list_sources,
/// the decoders); a stray byte that is not (from a cache an older medload wrote) becomes U+FFFD
/// instead of failing the command.
std::string json_output(const nlohmann::json& value);

Runner add_scan_command(CLI::App& command);
Runner add_build_command(CLI::App& command);
Runner add_merge_command(CLI::App& command);
Runner add_inspect_command(CLI::App& command);
Runner add_split_command(CLI::App& command);
Runner add_audit_command(CLI::App& command);
Runner add_preview_command(CLI::App& command);
Runner add_sample_command(CLI::App& command);
Runner add_config_command(CLI::App& command);

}  // namespace medload::cli
