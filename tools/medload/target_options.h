#pragma once
// The options of `medload scan` and `medload build` that name the targets' side files
// (--annotations, --target-classes), and what both print about them.

#include <iosfwd>
#include <optional>
#include <string>

#include "medload/loader/ingest/annotation.h"

namespace CLI {
class App;
}

namespace medload::cli {

/// Declares --annotations and --target-classes on `command`, writing into the two strings.
void add_target_input_options(CLI::App& command, std::string& annotations, std::string& target_classes);

/// nullopt for an option left empty, else its value.
std::optional<std::string> optional_path(const std::string& value);

/// "annotations: R rows, B boxes; N rows name no input file (first: a.png, ...)" on `out`.
void print_annotations_summary(const loader::AnnotationsSummary& summary, std::ostream& out);

}  // namespace medload::cli
