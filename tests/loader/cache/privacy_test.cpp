// Patient privacy (docs/privacy.md): keyed pseudonyms, key files, the share profile, what inspect
// says, and rebuilds and merges that would mix two privacy settings.

#include <gtest/gtest.h>

#include <dcmtk/dcmdata/dctk.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "medload/core/error.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/inspect.h"
#include "medload/loader/cache/merge.h"
#include "medload/loader/cache/privacy.h"
#include "medload/loader/cache/pseudonym_key.h"
#include "medload_test/command.h"
#include "schema.h"
#include "text_dicom.h"
#include "test_util.h"

namespace {

using medload::ConfigError;
using medload::FormatError;
using medload::loader::BuildOptions;
using medload::loader::CacheReader;
using medload::loader::PseudonymKey;
using medload::loader::test::TempDir;
using medload::loader::test::write_bytes;
using medload::loader::test::write_png;
namespace fs = std::filesystem;

std::vector<std::uint8_t> key_bytes(std::uint8_t first) {
  std::vector<std::uint8_t> bytes(32);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(first + i);
  return bytes;
}

PseudonymKey test_key(std::uint8_t first = 0) { return PseudonymKey::from_bytes(key_bytes(first)); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_key_file(const std::string& path, const std::string& text, mode_t mode) {
  write_bytes(path, text);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

std::string hex(const std::vector<std::uint8_t>& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

BuildOptions options_for(const std::string& root, const std::string& output) {
  BuildOptions options = medload::loader::test::quiet_build_options(root, output, 32);
  options.manifest = root + "/manifest.csv";
  return options;
}

// 18 images of 8 patients of 1..4 images each, listed in an order unlike the ids' sorted order,
// so that a split that ordered patients by id would differ between verbatim ids and pseudonyms.
void write_cohort(const std::string& root) {
  const std::vector<std::string> patients{"P9", "P1", "P5", "P1", "P7", "P3", "P9", "P2", "P5",
                                          "P8", "P1", "P4", "P9", "P7", "P6", "P2", "P1", "P3"};
  std::string manifest = "path,label,patient_id\n";
  for (std::size_t i = 0; i < patients.size(); ++i) {
    const std::string name = "img" + std::to_string(i) + ".png";
    write_png(root + "/" + name, static_cast<int>(i) + 1);
    manifest += name + "," + (i % 3 == 0 ? "b" : "a") + "," + patients[i] + "\n";
  }
  write_bytes(root + "/manifest.csv", manifest);
}

std::vector<std::int8_t> split_part(const std::string& cache, const std::string& name) {
  const medload::loader::schema::CacheFile file(cache);
  return medload::loader::schema::read_split_core(file, name, medload::loader::schema::kStoredLength).part;
}

// Moves image `moved` of the stored split `name` into another part than image `kept`: a leak.
void make_leak(const std::string& cache, const std::string& name, std::size_t moved, std::size_t kept) {
  const hid_t file = H5Fopen(cache.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hid_t part = H5Dopen2(file, ("splits/" + name + "/part").c_str(), H5P_DEFAULT);
  ASSERT_GE(part, 0);
  std::vector<std::int8_t> values = split_part(cache, name);
  values[moved] = values[kept] == 0 ? 1 : 0;
  EXPECT_GE(H5Dwrite(part, H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
  H5Dclose(part);
  H5Fclose(file);
}

void write_dicom(const std::string& path, int seed, const std::string& patient_id,
                 const std::string& institution) {
  medload::loader::test::write_text_dicom(path, seed, "", patient_id, institution);
}

}  // namespace

// ---- the key ------------------------------------------------------------------------------------

TEST(PrivacyKey, PseudonymIsHmacSha256OfTheIdTruncatedTo128Bits) {
  const PseudonymKey key = test_key(0);  // bytes 0x00..0x1f
  // Python: hmac.new(bytes(range(32)), b"medload/patient_id/v1\0P001", sha256).hexdigest()[:32]
  EXPECT_EQ(key.pseudonym("P001"), "c3274804f5838a940be387e9b0e37f92");
  EXPECT_EQ(key.fingerprint(), "4aa244f67c80cbe8");
  EXPECT_EQ(key.path_token("a/B.DCM"), "d972aae11339444bb7544994743725fc.dcm");
  EXPECT_EQ(key.pseudonym(""), "");  // no id is not a patient
  // Any bytes: an id that is not UTF-8 has its own pseudonym.
  const std::string latin1("Z\xe9ro", 4);
  EXPECT_EQ(key.pseudonym(latin1).size(), medload::loader::kPseudonymHexDigits);
  EXPECT_NE(key.pseudonym(latin1), key.pseudonym("Z\xc3\xa9ro"));
}

TEST(PrivacyKey, SameKeySamePseudonymsAnotherKeyDisjoint) {
  const PseudonymKey a = test_key(0), again = test_key(0), b = test_key(1);
  std::set<std::string> from_a, from_b;
  for (int i = 0; i < 2000; ++i) {
    const std::string id = "MRN" + std::to_string(i);
    EXPECT_EQ(a.pseudonym(id), again.pseudonym(id));
    from_a.insert(a.pseudonym(id));
    from_b.insert(b.pseudonym(id));
  }
  EXPECT_EQ(from_a.size(), 2000u);  // no collisions
  std::vector<std::string> common;
  std::set_intersection(from_a.begin(), from_a.end(), from_b.begin(), from_b.end(),
                        std::back_inserter(common));
  EXPECT_TRUE(common.empty());
  EXPECT_NE(a.fingerprint(), b.fingerprint());
}

TEST(PrivacyKey, ShortOrConstantKeysAreRefused) {
  EXPECT_THROW(PseudonymKey::from_bytes(std::vector<std::uint8_t>(31, 7)), ConfigError);
  EXPECT_THROW(PseudonymKey::from_bytes(std::vector<std::uint8_t>(32, 0)), ConfigError);
  EXPECT_THROW(PseudonymKey::from_bytes(std::vector<std::uint8_t>(513, 1)), ConfigError);
}

TEST(PrivacyKey, KeyFileMustBeAPrivateRegularFileOfHexText) {
  TempDir dir;
  const std::string good_text = hex(key_bytes(0)) + "\n";
  const std::string good = dir.path("good.key");
  write_key_file(good, good_text, 0600);
  EXPECT_EQ(PseudonymKey::load(good).pseudonym("P001"), test_key(0).pseudonym("P001"));
  write_key_file(dir.path("readonly.key"), hex(key_bytes(0)), 0400);  // no line break, owner read-only
  EXPECT_EQ(PseudonymKey::load(dir.path("readonly.key")).fingerprint(), test_key(0).fingerprint());

  auto refused = [](const std::string& path, const std::string& expected) {
    try {
      PseudonymKey::load(path, "--pseudonymize");
      ADD_FAILURE() << path << " was accepted";
    } catch (const ConfigError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("--pseudonymize"), std::string::npos) << message;
      EXPECT_NE(message.find(expected), std::string::npos) << message;
      EXPECT_EQ(message.find(hex(key_bytes(0))), std::string::npos) << "the message quotes the key";
    }
  };
  write_key_file(dir.path("world.key"), good_text, 0644);
  refused(dir.path("world.key"), "chmod 600");
  write_key_file(dir.path("group.key"), good_text, 0640);
  refused(dir.path("group.key"), "group or others");
  write_key_file(dir.path("groupwrite.key"), good_text, 0620);
  refused(dir.path("groupwrite.key"), "group or others");
  fs::create_symlink(good, dir.path("link.key"));
  refused(dir.path("link.key"), "symbolic link");
  ASSERT_EQ(::mkfifo(dir.path("fifo.key").c_str(), 0600), 0);
  refused(dir.path("fifo.key"), "FIFO");
  fs::create_directory(dir.path("folder.key"));
  refused(dir.path("folder.key"), "folder");
  write_key_file(dir.path("empty.key"), "", 0600);
  refused(dir.path("empty.key"), "empty");
  write_key_file(dir.path("newline.key"), "\n", 0600);
  refused(dir.path("newline.key"), "no key");
  write_key_file(dir.path("short.key"), hex(key_bytes(0)).substr(0, 62) + "\n", 0600);
  refused(dir.path("short.key"), "at least 32");
  write_key_file(dir.path("odd.key"), hex(key_bytes(0)) + "a\n", 0600);
  refused(dir.path("odd.key"), "odd number");
  write_key_file(dir.path("huge.key"), std::string(1 << 20, 'a'), 0600);
  refused(dir.path("huge.key"), "at most");
  write_key_file(dir.path("binary.key"), std::string(40, '\x01') + std::string(24, '\xfe'), 0600);
  refused(dir.path("binary.key"), "not a hexadecimal digit");
  refused(dir.path("missing.key"), "cannot be read");
  refused("", "empty");
}

TEST(PrivacyKey, KeygenWritesAPrivateKeyAndNeverReplacesOne) {
  TempDir dir;
  const std::string path = dir.path("new.key");
  const std::string fingerprint = medload::loader::write_new_key_file(path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 65);  // 64 hex digits and a line break
  EXPECT_EQ(PseudonymKey::load(path).fingerprint(), fingerprint);
  const std::string before = read_file(path);
  EXPECT_THROW(medload::loader::write_new_key_file(path), ConfigError);
  EXPECT_EQ(read_file(path), before);
  EXPECT_NE(medload::loader::write_new_key_file(dir.path("other.key")), fingerprint);

  const auto cli = medload::test::run_medload("keygen -o " + dir.path("cli.key"));
  EXPECT_EQ(cli.exit_code, 0) << cli.output;
  ASSERT_EQ(::stat(dir.path("cli.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(medload::test::run_medload("keygen -o " + dir.path("cli.key")).exit_code, 2);
}

// ---- builds, shards, merges, splits ----------------------------------------------------------------

TEST(PrivacyBuild, SameKeySamePseudonymsInBuildsShardsAndMerges) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_cohort(root);
  BuildOptions options = options_for(root, dir.path("whole.h5"));
  options.privacy.key = test_key(0);
  medload::loader::build_cache(options);
  const CacheReader whole(dir.path("whole.h5"));
  const CacheReader verbatim_ids = [&] {
    BuildOptions plain = options_for(root, dir.path("plain.h5"));
    medload::loader::build_cache(plain);
    return CacheReader(dir.path("plain.h5"));
  }();
  ASSERT_EQ(whole.size(), 18u);
  for (std::size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(whole.patient_ids()[i], test_key(0).pseudonym(verbatim_ids.patient_ids()[i])) << i;
  }

  std::vector<std::string> shards;
  for (int s = 0; s < 3; ++s) {
    BuildOptions shard = options;
    shard.output = dir.path("shard" + std::to_string(s) + ".h5");
    shard.shard_index = s;
    shard.shard_count = 3;
    medload::loader::build_cache(shard);
    shards.push_back(shard.output);
  }
  medload::loader::MergeOptions merge;
  merge.inputs = {shards[2], shards[0], shards[1]};
  merge.output = dir.path("merged.h5");
  merge.progress = medload::ProgressStyle::kQuiet;
  medload::loader::merge_caches(merge);
  EXPECT_EQ(CacheReader(merge.output).patient_ids(), whole.patient_ids());
  EXPECT_TRUE(medload::loader::read_privacy_record(merge.output).pseudonymised);

  // Another key: no pseudonym in common.
  BuildOptions other = options_for(root, dir.path("other.h5"));
  other.privacy.key = test_key(1);
  medload::loader::build_cache(other);
  const std::vector<std::string>& a = whole.patient_ids();
  const std::vector<std::string> b = CacheReader(other.output).patient_ids();
  const std::set<std::string> set_a(a.begin(), a.end());
  for (const std::string& id : b) EXPECT_EQ(set_a.count(id), 0u) << id;
}

TEST(PrivacyBuild, PseudonymisedAndVerbatimBuildsSplitAlike) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_cohort(root);
  BuildOptions plain = options_for(root, dir.path("plain.h5"));
  medload::loader::build_cache(plain);
  BuildOptions keyed = options_for(root, dir.path("keyed.h5"));
  keyed.privacy.key = test_key(5);
  medload::loader::build_cache(keyed);

  for (const std::string& cache : {plain.output, keyed.output}) {
    const auto split =
        medload::test::run_medload("split " + cache + " --ratios 0.5,0.25,0.25 --seed 11 --kfold 3");
    ASSERT_EQ(split.exit_code, 0) << split.output;
  }
  EXPECT_EQ(split_part(plain.output, "default"), split_part(keyed.output, "default"));
  EXPECT_EQ(split_part(plain.output, "kfold"), split_part(keyed.output, "kfold"));
  const auto parts = split_part(keyed.output, "default");
  EXPECT_GT(std::set<std::int8_t>(parts.begin(), parts.end()).size(), 1u);  // a real split

  // The audit finds the same leak in both and names the patient as stored: the pseudonymised
  // cache's audit prints the pseudonym, never the verbatim id. P9 has images 0, 6 and 12.
  for (const std::string& cache : {plain.output, keyed.output}) {
    const auto clean = medload::test::run_medload("audit " + cache);
    EXPECT_EQ(clean.exit_code, 0) << clean.output;
    make_leak(cache, "default", 0, 6);
  }
  const auto plain_audit = medload::test::run_medload("audit " + plain.output);
  EXPECT_EQ(plain_audit.exit_code, 3) << plain_audit.output;
  EXPECT_NE(plain_audit.output.find("\"P9\""), std::string::npos) << plain_audit.output;
  const auto keyed_audit = medload::test::run_medload("audit " + keyed.output);
  EXPECT_EQ(keyed_audit.exit_code, 3) << keyed_audit.output;
  EXPECT_NE(keyed_audit.output.find(test_key(5).pseudonym("P9")), std::string::npos) << keyed_audit.output;
  EXPECT_EQ(keyed_audit.output.find("\"P9\""), std::string::npos) << keyed_audit.output;
}

TEST(PrivacyBuild, RebuildWithOtherPrivacySettingsIsRefusedAndLeavesTheCache) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_cohort(root);
  BuildOptions plain = options_for(root, dir.path("c.h5"));
  medload::loader::build_cache(plain);
  const std::string before = read_file(plain.output);

  BuildOptions keyed = plain;
  keyed.privacy.key = test_key(0);
  try {
    medload::loader::build_cache(keyed);
    ADD_FAILURE() << "a verbatim cache was rebuilt with a key";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--pseudonymize"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("patient ids verbatim"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(plain.output), before);

  keyed.output = dir.path("k.h5");
  medload::loader::build_cache(keyed);
  const auto ids = CacheReader(keyed.output).patient_ids();
  const auto again = medload::loader::build_cache(keyed);  // the same key: reuses everything
  EXPECT_EQ(again.reused_files, 18u);
  EXPECT_EQ(CacheReader(keyed.output).patient_ids(), ids);

  BuildOptions other_key = keyed;
  other_key.privacy.key = test_key(1);
  EXPECT_THROW(medload::loader::build_cache(other_key), ConfigError);
  BuildOptions no_key = keyed;
  no_key.privacy.key.reset();
  EXPECT_THROW(medload::loader::build_cache(no_key), ConfigError);
  BuildOptions shared = keyed;
  shared.privacy.share = true;
  EXPECT_THROW(medload::loader::build_cache(shared), ConfigError);
  EXPECT_EQ(CacheReader(keyed.output).patient_ids(), ids);
}

TEST(PrivacyMerge, CachesWithDifferentKeysOrVerbatimIdsAreNotMerged) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_cohort(root);
  auto shard = [&](int index, std::optional<std::uint8_t> key, const std::string& name) {
    BuildOptions options = options_for(root, dir.path(name));
    options.shard_index = index;
    options.shard_count = 2;
    if (key) options.privacy.key = test_key(*key);
    medload::loader::build_cache(options);
    return options.output;
  };
  const std::string k0 = shard(0, 0, "k0.h5"), k1 = shard(1, 1, "k1.h5"),
                    v1 = shard(1, std::nullopt, "v1.h5");
  medload::loader::MergeOptions merge;
  merge.output = dir.path("m.h5");
  merge.progress = medload::ProgressStyle::kQuiet;
  merge.inputs = {k0, k1};
  try {
    medload::loader::merge_caches(merge);
    ADD_FAILURE() << "caches pseudonymised with two keys were merged";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(test_key(1).fingerprint()), std::string::npos) << e.what();
  }
  merge.inputs = {k0, v1};
  try {
    medload::loader::merge_caches(merge);
    ADD_FAILURE() << "a pseudonymised and a verbatim cache were merged";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("patient ids verbatim"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(merge.output));
}

// ---- the share profile ---------------------------------------------------------------------------

TEST(PrivacyShare, NoVerbatimIdPathOrInstitutionInTheCacheOrReport) {
  TempDir dir;
  const std::string root = dir.path("Doe_Jane_19700101");
  const std::string folder = "Smith^John_2020-05-04";
  for (int i = 0; i < 6; ++i) write_png(root + "/" + folder + "/scan" + std::to_string(i) + ".png", i + 1);
  write_png(root + "/" + folder + "/copy_of_Brown.png", 1);     // duplicate of scan0
  write_bytes(root + "/" + folder + "/empty_Mueller.png", "");  // empty_file
  write_dicom(root + "/dicom/Roe_Richard.dcm", 3, "MRN-778899", "General Hospital of Springfield");
  std::string manifest = "path,label,patient_id,site,age,birth_date,name\n";
  const char* ids[] = {"JX-1001", "JX-1001", "JX-1002", "", "Z\xe9ro-77", "JX-1003"};
  const char* manifest_sites[] = {"St Elsewhere Clinic", "St Elsewhere Clinic", "Mercy Hospital",
                                  "Mercy Hospital",      "St Elsewhere Clinic", ""};
  for (int i = 0; i < 6; ++i) {
    manifest += folder + "/scan" + std::to_string(i) + ".png," + (i % 2 ? "a" : "b") + "," + ids[i] + "," +
                manifest_sites[i] + "," + std::to_string(40 + i * 12) + ",1941-03-0" + std::to_string(i + 1) +
                ",Alice Example\n";
  }
  manifest += folder + "/copy_of_Brown.png,a,JX-1009,Mercy Hospital,50,1950-01-01,Bob Example\n";
  manifest += folder + "/empty_Mueller.png,a,JX-1010,Mercy Hospital,50,1950-01-02,Carol Example\n";
  manifest += "dicom/Roe_Richard.dcm,b,,,,,\n";
  write_bytes(root + "/manifest.csv", manifest);
  write_bytes(dir.path("sites.json"), R"({"St Elsewhere Clinic": "SITE01"})");

  BuildOptions options = options_for(root, dir.path("shared.h5"));
  options.privacy.key = test_key(3);
  options.privacy.share = true;
  options.privacy.site_map = medload::loader::load_site_map(dir.path("sites.json"));
  const auto result = medload::loader::build_cache(options);
  EXPECT_EQ(result.images, 7u);  // 6 PNGs + the DICOM; the copy and the empty file rejected
  EXPECT_EQ(result.rejected_files, 2u);

  const std::string cache = read_file(options.output), report = read_file(result.report_path);
  const std::vector<std::string> verbatim{
      "Doe_Jane", "19700101",    "Smith^John",  "2020-05-04",       "scan0",       "copy_of_Brown", "Brown",
      "Mueller",  "Roe_Richard", "MRN-778899",  "General Hospital", "Springfield", "St Elsewhere",  "Mercy",
      "JX-10",    "Z\xe9ro",     "Z\xc3\xa9ro", "1941-03",          "1950-01",     "Alice",         "Example",
      dir.str()};
  // Column names are not patient data: the record names the columns it removed.
  for (const std::string& text : verbatim) {
    EXPECT_EQ(cache.find(text), std::string::npos) << "the cache holds \"" << text << "\"";
    EXPECT_EQ(report.find(text), std::string::npos) << "the report holds \"" << text << "\"";
  }

  const CacheReader reader(options.output);
  const PseudonymKey key = test_key(3);
  const std::set<std::string> stored(reader.patient_ids().begin(), reader.patient_ids().end());
  for (const std::string id : {"JX-1001", "JX-1002", "JX-1003", "MRN-778899", "Z\xc3\xa9ro-77"}) {
    EXPECT_EQ(stored.count(key.pseudonym(id)), 1u) << id;
  }
  EXPECT_EQ(stored.count(""), 1u);  // the sample without an id keeps none
  const std::set<std::string> sites(reader.sites().begin(), reader.sites().end());
  EXPECT_EQ(sites, (std::set<std::string>{"", "SITE01"}));
  EXPECT_EQ(reader.meta_names(), (std::vector<std::string>{"age", "modality"}));
  const auto age = reader.meta("age");
  EXPECT_EQ(*std::max_element(age.values.begin(), age.values.end()), 90.0);  // 100 -> 90
  for (const auto& path : reader.source_paths())
    EXPECT_EQ(path.size(), 36u) << path;  // token + ".png"/".dcm"

  const nlohmann::json summary = medload::loader::inspect_cache(options.output);
  const auto& privacy = summary["privacy"];
  EXPECT_EQ(privacy["profile"], "share");
  EXPECT_NE(privacy["patient_ids"].get<std::string>().find("pseudonymised"), std::string::npos);
  EXPECT_NE(privacy["source_paths"].get<std::string>().find("keyed tokens"), std::string::npos);
  EXPECT_NE(privacy["rejected_paths"].get<std::string>().find("keyed tokens"), std::string::npos);
  EXPECT_NE(privacy["sites"].get<std::string>().find("site codes only"), std::string::npos);
  const std::string removed = privacy["removed"].dump();
  EXPECT_NE(removed.find("metadata column name (6 images)"), std::string::npos) << removed;
  EXPECT_NE(removed.find("institution names without a site code"), std::string::npos) << removed;
}

TEST(PrivacyShare, NeedsAKeyAndKeepMetaNeedsShare) {
  medload::loader::PrivacyOptions options;
  options.share = true;
  EXPECT_THROW(options.validate(), ConfigError);
  options.share = false;
  options.keep_metadata = {"age"};
  EXPECT_THROW(options.validate(), ConfigError);
  options.keep_metadata.clear();
  options.site_map = {{"General Hospital", "General Hospital"}};  // a "code" that is the name
  EXPECT_THROW(options.validate(), ConfigError);
}

// ---- inspect and the command ------------------------------------------------------------------------

TEST(PrivacyInspect, StatesVerbatimIdsFromDicomAndAbsolutePaths) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_dicom(root + "/a/one.dcm", 1, "MRN-1", "Clinic A");
  write_dicom(root + "/a/two.dcm", 2, "MRN-2", "Clinic A");
  write_bytes(root + "/manifest.csv",
              "path,label\na/one.dcm,a\na/two.dcm,b\n" + dir.path("elsewhere.png") + ",a\n");
  BuildOptions options = options_for(root, dir.path("c.h5"));
  medload::loader::build_cache(options);
  const auto inspect = medload::test::run_medload("inspect " + options.output);
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("patient ids: verbatim (from DICOM PatientID: 2 images)"), std::string::npos)
      << inspect.output;
  EXPECT_NE(inspect.output.find("source paths: relative to the build's root"), std::string::npos)
      << inspect.output;
  EXPECT_NE(inspect.output.find("rejected paths: absolute"), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("sites: verbatim institution names"), std::string::npos) << inspect.output;
}

TEST(PrivacyCommand, BadKeyAndShareOptionsAreUsageErrorsNamingTheOption) {
  TempDir dir;
  const std::string root = dir.path("in");
  write_cohort(root);
  const std::string base =
      "build " + root + " --manifest " + root + "/manifest.csv --size 32 --in-process -q -o ";
  write_key_file(dir.path("world.key"), hex(key_bytes(0)) + "\n", 0644);
  const auto world =
      medload::test::run_medload(base + dir.path("c.h5") + " --pseudonymize " + dir.path("world.key"));
  EXPECT_EQ(world.exit_code, 2) << world.output;
  EXPECT_NE(world.output.find("--pseudonymize"), std::string::npos) << world.output;
  EXPECT_NE(world.output.find("chmod 600"), std::string::npos) << world.output;
  EXPECT_FALSE(fs::exists(dir.path("c.h5")));

  const auto share = medload::test::run_medload(base + dir.path("c.h5") + " --share");
  EXPECT_EQ(share.exit_code, 2) << share.output;
  EXPECT_NE(share.output.find("--share needs --pseudonymize"), std::string::npos) << share.output;
  const auto empty = medload::test::run_medload(base + dir.path("c.h5") + " --pseudonymize ''");
  EXPECT_EQ(empty.exit_code, 2) << empty.output;
  write_bytes(dir.path("bad_sites.json"), R"({"Clinic": 3})");
  const auto sites =
      medload::test::run_medload(base + dir.path("c.h5") + " --site-map " + dir.path("bad_sites.json"));
  EXPECT_EQ(sites.exit_code, 2) << sites.output;
  EXPECT_NE(sites.output.find("--site-map"), std::string::npos) << sites.output;

  ASSERT_EQ(medload::test::run_medload("keygen -o " + dir.path("k")).exit_code, 0);
  const auto built =
      medload::test::run_medload(base + dir.path("c.h5") + " --pseudonymize " + dir.path("k") + " --share");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  EXPECT_EQ(read_file(dir.path("c.report.json")).find(root), std::string::npos);
  const auto rebuilt = medload::test::run_medload(base + dir.path("c.h5"));
  EXPECT_EQ(rebuilt.exit_code, 2) << rebuilt.output;
  EXPECT_NE(rebuilt.output.find("other output"), std::string::npos) << rebuilt.output;
}
