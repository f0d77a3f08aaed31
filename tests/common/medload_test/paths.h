#pragma once
// Where the tests and benchmarks find the source tree, the build tree, the committed fixtures and
// the fetched corpus. Every test and benchmark file sees these names (CMake force-includes this
// header); the paths themselves live in one file CMake generates in the build tree
// (medload_test_paths.cpp). Absolute paths as compile definitions would differ on every compile
// line between two clones, and a compiler cache (ccache, see the top-level CMakeLists.txt) could
// reuse no test object from one clone in the next.

namespace medload::test {

/// The source tree (the repository's root).
const char* source_dir();
/// The build tree.
const char* binary_dir();
/// tests/fixtures: small real files committed with their licences.
const char* fixtures_dir();
/// data/corpus: the real corpus scripts/fetch_corpus.sh builds.
const char* corpus_dir();

}  // namespace medload::test

#define MEDLOAD_SOURCE_DIR (::medload::test::source_dir())
#define MEDLOAD_BINARY_DIR (::medload::test::binary_dir())
#define MEDLOAD_FIXTURES_DIR (::medload::test::fixtures_dir())
#define MEDLOAD_CORPUS_DIR (::medload::test::corpus_dir())
