// medload-torch: runs the medload commands that need LibTorch (preview, sample). medload execs
// it with its own arguments once they parse (torch_commands.h); it is not meant to be run by hand,
// though `medload-torch preview ...` works the same as `medload preview ...`.

#include <iterator>

#include "command.h"
#include "torch_commands.h"

namespace {

using Entry = medload::cli::CommandEntry;

constexpr Entry kCommands[] = {
    {"preview", medload::cli::kPreviewDescription, medload::cli::add_preview_command},
    {"sample", medload::cli::kSampleDescription, medload::cli::add_sample_command},
};

}  // namespace

int main(int argc, char** argv) {
  return medload::cli::run_command_line(argc, argv, std::data(kCommands), std::size(kCommands));
}
