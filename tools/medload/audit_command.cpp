// medload audit: placeholder until its component lands; it says so and fails.

#include <CLI/CLI.hpp>

#include <iostream>

#include "command.h"

namespace medload::cli {

Runner add_audit_command(CLI::App& command) {
  command.allow_extras();
  return [] {
    std::cerr << "medload audit: not available in this build yet\n";
    return kExitFailure;
  };
}

}  // namespace medload::cli
