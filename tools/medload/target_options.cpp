#include "target_options.h"

#include <CLI/CLI.hpp>

#include <ostream>

namespace medload::cli {

void add_target_input_options(CLI::App& command, std::string& annotations, std::string& target_classes) {
  command
      .add_option("--annotations", annotations,
                  "Boxes from a CSV with one row per box: path,x,y,width,height,label (several rows per "
                  "image; an image without a row is a negative). See docs/targets.md")
      ->type_name("A.csv");
  command
      .add_option("--target-classes", target_classes,
                  "Class map of masks, boxes and landmarks: {\"1\": \"liver\", \"2\": \"tumour\"}; ids not "
                  "in it make that target invalid")
      ->type_name("classes.json");
}

std::optional<std::string> optional_path(const std::string& value) {
  return value.empty() ? std::nullopt : std::optional<std::string>(value);
}

void print_annotations_summary(const loader::AnnotationsSummary& summary, std::ostream& out) {
  out << "annotations: " << summary.rows << (summary.rows == 1 ? " row, " : " rows, ") << summary.boxes
      << (summary.boxes == 1 ? " box" : " boxes");
  if (summary.unmatched_rows > 0) {
    out << "; " << summary.unmatched_rows << (summary.unmatched_rows == 1 ? " row names" : " rows name")
        << " no input file (first:";
    for (std::size_t k = 0; k < summary.unmatched_paths.size() && k < 5; ++k) {
      out << (k ? ", " : " ") << summary.unmatched_paths[k];
    }
    out << ")";
  }
  out << '\n';
}

}  // namespace medload::cli
