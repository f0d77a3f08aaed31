// The command line both medload executables share: the app, its commands, parsing, and the
// mapping from exceptions to exit codes. Torch-free.

#include <malloc.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <exception>
#include <iostream>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.h"
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

// CLI11 2.1 reads integers with strtoull and strtoll in base 0: "-1" given to an unsigned option
// becomes 2^64 - 1, a value past the type's range saturates, and "010" is octal 8. Every integer
// option of medload takes decimal digits only (a leading '-' where negatives make sense): this
// refuses anything else, naming the option, and drops leading zeros so "010" is ten.
CLI::Validator decimal_integer(bool is_unsigned) {
  return CLI::Validator(
      [is_unsigned](std::string& text) -> std::string {
        const bool negative = !text.empty() && text[0] == '-';
        const std::size_t first = negative ? 1 : 0;
        const bool digits =
            text.size() > first && std::all_of(text.begin() + static_cast<std::ptrdiff_t>(first), text.end(),
                                               [](char c) { return c >= '0' && c <= '9'; });
        if (!digits) return "\"" + to_valid_utf8(text) + "\" is not a whole number in decimal digits";
        if (negative && is_unsigned) return text + " is negative; a whole number from 0 is expected";
        const std::size_t lead = std::min(text.find_first_not_of('0', first), text.size() - 1);
        text.erase(first, lead - first);
        const char* const end = text.data() + text.size();
        bool in_range = false;
        if (is_unsigned) {
          std::uint64_t value = 0;
          in_range = std::from_chars(text.data(), end, value).ec == std::errc();
        } else {
          std::int64_t value = 0;
          in_range = std::from_chars(text.data(), end, value).ec == std::errc();
        }
        if (!in_range) {
          return text + " is out of range (" +
                 (is_unsigned ? "at most " + std::to_string(std::numeric_limits<std::uint64_t>::max())
                              : std::to_string(std::numeric_limits<std::int64_t>::min()) + " to " +
                                    std::to_string(std::numeric_limits<std::int64_t>::max())) +
                 ")";
        }
        return {};
      },
      "", "decimal integer");
}

// Puts decimal_integer before the other checks (ranges) of every integer option of `command`
// (CLI11 names their types UINT and INT), so a range sees the value the option will get.
void require_decimal_integers(CLI::App& command) {
  for (CLI::Option* option : command.get_options()) {
    const std::string type = option->get_type_name();
    if (type.rfind("UINT", 0) == 0) {
      option->transform(decimal_integer(true));
    } else if (type.rfind("INT", 0) == 0) {
      option->transform(decimal_integer(false));
    }
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
