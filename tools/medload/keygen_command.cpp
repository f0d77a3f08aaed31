// medload keygen: write a new pseudonymisation key file (mode 0600) for `medload build
// --pseudonymize`. Torch-free: it needs only OpenSSL's random generator, through the library.

#include <CLI/CLI.hpp>

#include <cstddef>
#include <iostream>
#include <memory>
#include <string>

#include "command.h"
#include "medload/loader/cache/pseudonym_key.h"

namespace medload::cli {

Runner add_keygen_command(CLI::App& command) {
  struct Args {
    std::string output;
    std::size_t bytes = loader::kMinKeyBytes;
  };
  auto args = std::make_shared<Args>();
  command.add_option("-o,--output", args->output, "The key file to create (never replaced if it exists)")
      ->required()
      ->type_name("KEYFILE");
  command
      .add_option("--bytes", args->bytes,
                  "Random bytes of key (" + std::to_string(loader::kMinKeyBytes) + ".." +
                      std::to_string(loader::kMaxKeyBytes) + ")")
      ->default_val(loader::kMinKeyBytes);
  command.footer(
      "The key is written as hex text with mode 0600. Keep it with the data, never with a cache you share:\n"
      "whoever holds it can confirm guessed patient ids. Lose it and pseudonyms cannot be made again\n"
      "(rebuilds and new shards would get other pseudonyms). Same as: (umask 077; openssl rand -hex 32 > "
      "KEYFILE).\n"
      "Exit 0 when written; 1 when it cannot be written; 2 on a usage error (the file exists).");

  return [args]() -> int {
    const std::string fingerprint = loader::write_new_key_file(args->output, args->bytes);
    std::cout << "wrote a " << args->bytes * 8 << "-bit key to " << args->output
              << " (mode 0600); key fingerprint " << fingerprint << "\n";
    return kExitOk;
  };
}

}  // namespace medload::cli
