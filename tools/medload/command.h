#pragma once
// The `medload` command: each subcommand lives in its own <name>_command.cpp, which declares its
// options on the CLI11 subcommand it is given and returns the function that runs it once the
// command line has been parsed. Commands parse options and call library functions; nothing else.

#include <cstddef>
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

/// Runs a parsed subcommand and returns its exit code. Library exceptions are mapped by
/// run_command_line(): ConfigError -> kExitUsage, any other exception -> kExitFailure.
using Runner = std::function<int()>;

/// Not an exit code: what a runner answers in the torch-free medload for a command that needs
/// LibTorch; run_command_line() then hands the command line to medload-torch (torch_commands.h).
constexpr int kRunInTorchTool = -1;

/// One subcommand: `add` declares its options on the CLI11 subcommand and returns its runner.
struct CommandEntry {
  const char* name;
  const char* description;
  Runner (*add)(CLI::App&);
};

/// medload's command line over `commands`: parses argv, answers --help, --version and usage
/// errors (exit 2), runs the parsed subcommand and maps its exceptions to exit codes
/// (ConfigError -> kExitUsage, any other -> kExitFailure, each printed as
/// "medload COMMAND: error: ..."). main() of medload and of medload-torch.
int run_command_line(int argc, char** argv, const CommandEntry* commands, std::size_t count);

/// JSON as a command prints or writes it: indented by 2. Text reaches it as UTF-8 (list_sources,
/// the decoders); a stray byte that is not (from a cache an older medload wrote) becomes U+FFFD
/// instead of failing the command.
std::string json_output(const nlohmann::json& value);

Runner add_scan_command(CLI::App& command);
Runner add_build_command(CLI::App& command);
Runner add_merge_command(CLI::App& command);
Runner add_inspect_command(CLI::App& command);
Runner add_keygen_command(CLI::App& command);
Runner add_split_command(CLI::App& command);
Runner add_audit_command(CLI::App& command);
Runner add_config_command(CLI::App& command);
// preview and sample, which need LibTorch: torch_commands.h.

}  // namespace medload::cli
