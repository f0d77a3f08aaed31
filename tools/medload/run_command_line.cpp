// The command line both medload executables share: the app, its commands, parsing, and the
// mapping from exceptions to exit codes. Torch-free.

#include <malloc.h>

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
#include "integer_options.h"
#include "medload/core/error.h"
#include "medload/core/text.h"
#include "medload/core/version.h"
#include "torch_commands.h"

namespace medload::cli {

namespace {

// Runs a parsed command; its exceptions become a message naming the command and an exit code.
int run_parsed(const CLI::App& command, const Runner& run, char** argv) {
  const std::string prefix = "medload " + command.get_name() + ": ";
  try {
    const int code = run();
    if (code == kRunInTorchTool) exec_torch_tool(argv);
    return code;
  } catch (const ConfigError& e) {
    // Messages may quote file names and header text: print them as UTF-8.
    std::cerr << prefix << "error: " << to_valid_utf8(e.what()) << '\n';
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << prefix << "error: " << to_valid_utf8(e.what()) << '\n';
    return kExitFailure;
  }
}

}  // namespace

std::string json_output(const nlohmann::json& value) {
  return value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

int run_command_line(int argc, char** argv, const CommandEntry* commands, std::size_t count) {
#ifdef M_MMAP_THRESHOLD
  // Image-sized buffers (megabytes each, one after another) stay in the heap for reuse instead of
  // being unmapped when freed, which had the kernel zero fresh pages for every image.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
  CLI::App app{"medload " + std::string(kVersion) +
               ": validated, preprocessed HDF5 caches of medical images, served to LibTorch"};
  app.set_version_flag("--version", std::string(kVersion));
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 success, 1 failure, 2 usage error, 3 leakage found.\n"
      "Run `medload COMMAND --help` for the options of a command.");

  std::vector<std::pair<CLI::App*, Runner>> runners;
  for (std::size_t i = 0; i < count; ++i) {
    CLI::App* command = app.add_subcommand(commands[i].name, commands[i].description);
    runners.emplace_back(command, commands[i].add(*command));
    require_decimal_integers(*command);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }

  for (const auto& [command, run] : runners) {
    if (command->parsed()) return run_parsed(*command, run, argv);
  }
  return kExitUsage;  // unreachable: require_subcommand(1)
}

}  // namespace medload::cli
