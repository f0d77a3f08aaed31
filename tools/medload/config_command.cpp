// medload config: print the default pipeline config, or check a config file and print its hash.

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "command.h"
#include "medload/loader/preprocess/pipeline_config.h"

namespace medload::cli {

Runner add_config_command(CLI::App& command) {
  struct Args {
    bool print_default = false;
    std::string check;
  };
  auto args = std::make_shared<Args>();
  auto* print = command.add_flag("--print-default", args->print_default,
                                 "Print the default pipeline config (validate, preprocess, "
                                 "augment) as JSON, every key with its default");
  auto* check = command
                    .add_option("--check", args->check,
                                "Validate the config FILE (unknown keys and out-of-range "
                                "values are errors, exit 2) and print its hash")
                    ->type_name("FILE");
  print->excludes(check);
  check->excludes(print);
  command.footer(
      "The config hash is XXH64 of the canonical JSON (sorted keys, defaults filled in): key\n"
      "order and number spelling do not change it; any parameter does. See docs/preprocess.md.");

  return [args]() -> int {
    if (!args->print_default && args->check.empty()) {
      std::cerr << "medload config: give --print-default or --check FILE (see --help)\n";
      return kExitUsage;
    }
    if (args->print_default) {
      const loader::PipelineConfig defaults;
      std::cout << defaults.to_json().dump(2) << '\n';
      return kExitOk;
    }
    const loader::PipelineConfig config = loader::load_pipeline_config(args->check);
    std::cout << args->check << ": valid\nconfig hash: " << config.config_hash() << '\n';
    return kExitOk;
  };
}

}  // namespace medload::cli
