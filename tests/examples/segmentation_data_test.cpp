// The segmentation example's data: the NIfTI reader (the real mricron-data volumes, and crafted
// headers that must fail with an error naming the field), the AAL label text, the coarse label
// derivation, connected-component boxes, and the slice set written from the real package.
#include <gtest/gtest.h>
#include <zlib.h>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "medload/core/error.h"
#include "medload_test/require_data.h"
#include "medload_test/temp_dir.h"
#include "nifti.h"
#include "segmentation_data.h"

namespace fs = std::filesystem;
using namespace medload::examples;

namespace {

const std::string kTemplates = "/usr/share/mricron/templates";

bool have_mricron_data() {
  return fs::exists(kTemplates + "/ch2.nii.gz") && fs::exists(kTemplates + "/aal.nii.gz");
}
const char* const kNoData = "no /usr/share/mricron/templates (scripts/setup.sh installs mricron-data)";

// A NIfTI-1 single-file header for an nx x ny x nz volume of `datatype`, fields at their offsets.
struct CraftedHeader {
  std::array<unsigned char, 352> bytes{};
  template <class T>
  void set(std::size_t offset, T value) {
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
  }
  CraftedHeader(std::int16_t nx, std::int16_t ny, std::int16_t nz, std::int16_t datatype,
                std::int16_t bitpix) {
    set<std::int32_t>(0, 348);
    const std::int16_t dim[8] = {3, nx, ny, nz, 1, 1, 1, 1};
    for (int d = 0; d < 8; ++d) set<std::int16_t>(40 + 2 * static_cast<std::size_t>(d), dim[d]);
    set<std::int16_t>(70, datatype);
    set<std::int16_t>(72, bitpix);
    for (int d = 0; d < 8; ++d) set<float>(76 + 4 * static_cast<std::size_t>(d), 1.0f);
    set<float>(108, 352.0f);
    set<float>(112, 1.0f);
    set<std::int16_t>(254, 1);
    const float srow[12] = {2, 0, 0, -10, 0, 3, 0, -20, 0, 0, 4, -30};
    for (int i = 0; i < 12; ++i) set<float>(280 + 4 * static_cast<std::size_t>(i), srow[i]);
    std::memcpy(bytes.data() + 344, "n+1\0", 4);
  }
};

void write_file(const std::string& path, const CraftedHeader& h, const std::vector<unsigned char>& data,
                bool gzip) {
  std::string all(reinterpret_cast<const char*>(h.bytes.data()), h.bytes.size());
  all.append(reinterpret_cast<const char*>(data.data()), data.size());
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, all.data(), static_cast<unsigned>(all.size())), static_cast<int>(all.size()));
    gzclose(f);
  } else {
    std::ofstream(path, std::ios::binary).write(all.data(), static_cast<std::streamsize>(all.size()));
  }
}

template <class T>
std::vector<unsigned char> as_bytes(const std::vector<T>& values) {
  std::vector<unsigned char> out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// The FormatError message read_nifti gives for `header` + `data`, or "" when it reads.
std::string nifti_error(const medload::test::TempDir& dir, const CraftedHeader& header,
                        const std::vector<unsigned char>& data, const NiftiLimits& limits = {}) {
  const std::string path = dir / "crafted.nii";
  write_file(path, header, data, false);
  try {
    read_nifti(path, limits);
    return "";
  } catch (const medload::FormatError& e) {
    return e.what();
  }
}

}  // namespace

// ---- the NIfTI reader ----------------------------------------------------------------------

TEST(ReadNifti, ReadsTheRealTemplateAsTheIndependentlyDecompressedBytes) {
  MEDLOAD_REQUIRE_DATA(have_mricron_data(), kNoData);
  const std::string path = kTemplates + "/ch2.nii.gz";
  const NiftiVolume v = read_nifti(path);
  EXPECT_EQ(v.nx, 181);
  EXPECT_EQ(v.ny, 217);
  EXPECT_EQ(v.nz, 181);
  EXPECT_EQ(v.datatype, 2);
  EXPECT_EQ(v.spacing, (std::array<float, 3>{1.0f, 1.0f, 1.0f}));
  EXPECT_FLOAT_EQ(v.sform[0][3], -90.0f);  // RAS: voxel i = 0 is the subject's left
  EXPECT_FLOAT_EQ(v.sform[1][3], -125.0f);
  EXPECT_FLOAT_EQ(v.sform[2][3], -71.0f);
  // zlib alone, and the voxel at byte 352 + i + nx * (j + ny * k).
  gzFile f = gzopen(path.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  std::vector<unsigned char> all(352 + v.size());
  ASSERT_EQ(gzread(f, all.data(), static_cast<unsigned>(all.size())), static_cast<int>(all.size()));
  gzclose(f);
  std::size_t nonzero = 0;
  for (const std::array<std::int64_t, 3> ijk : {std::array<std::int64_t, 3>{90, 108, 90},
                                                {0, 0, 0},
                                                {180, 216, 180},
                                                {60, 150, 100},
                                                {120, 60, 40}}) {
    const auto index = static_cast<std::size_t>(ijk[0] + 181 * (ijk[1] + 217 * ijk[2]));
    EXPECT_EQ(v.at(ijk[0], ijk[1], ijk[2]), static_cast<float>(all[352 + index]));
    nonzero += all[352 + index] != 0;
  }
  EXPECT_GE(nonzero, 3u);  // the points inside the head are not background
}

TEST(ReadNifti, RoundTripsCraftedVolumesOfEveryAcceptedTypePlainAndGzipped) {
  medload::test::TempDir dir("nifti");
  const std::vector<std::int16_t> s16 = {-32768, -1, 0, 1, 2, 32767};
  const std::vector<std::uint16_t> u16 = {0, 1, 255, 256, 40000, 65535};
  const std::vector<float> f32 = {-1.5f, 0.0f, 0.25f, 3.0f, 1e6f, -7.0f};
  const std::vector<std::uint8_t> u8 = {0, 1, 2, 127, 128, 255};
  for (bool gzip : {false, true}) {
    const std::string path = dir / (gzip ? "v.nii.gz" : "v.nii");
    auto check = [&](std::int16_t datatype, std::int16_t bits, const std::vector<unsigned char>& data,
                     auto values) {
      write_file(path, CraftedHeader(3, 2, 1, datatype, bits), data, gzip);
      const NiftiVolume v = read_nifti(path);
      ASSERT_EQ(v.size(), 6u);
      EXPECT_EQ(v.datatype, datatype);
      for (std::size_t i = 0; i < 6; ++i)
        EXPECT_EQ(v.voxels[i], static_cast<float>(values[i])) << datatype << " " << i;
      EXPECT_EQ(v.at(2, 1, 0), static_cast<float>(values[5]));  // i fastest
      EXPECT_FLOAT_EQ(v.sform[1][1], 3.0f);
    };
    check(2, 8, as_bytes(u8), u8);
    check(4, 16, as_bytes(s16), s16);
    check(512, 16, as_bytes(u16), u16);
    check(16, 32, as_bytes(f32), f32);
  }
}

TEST(ReadNifti, RefusesCraftedHeadersNamingTheField) {
  medload::test::TempDir dir("nifti");
  const std::vector<unsigned char> data(24, 7);  // 2x3x4 uint8
  auto base = [] { return CraftedHeader(2, 3, 4, 2, 8); };
  EXPECT_EQ(nifti_error(dir, base(), data), "");
  struct Case {
    const char* expected;
    std::function<void(CraftedHeader&)> edit;
  };
  const std::vector<Case> cases = {
      {"sizeof_hdr is 349", [](CraftedHeader& h) { h.set<std::int32_t>(0, 349); }},
      {"big-endian", [](CraftedHeader& h) { h.set<std::int32_t>(0, 0x5C010000); }},
      {"magic is \"ni1\"", [](CraftedHeader& h) { std::memcpy(h.bytes.data() + 344, "ni1\0", 4); }},
      {"magic is not", [](CraftedHeader& h) { std::memcpy(h.bytes.data() + 344, "xyz\0", 4); }},
      {"dim[0] is 2", [](CraftedHeader& h) { h.set<std::int16_t>(40, 2); }},
      {"dim[0] is 8", [](CraftedHeader& h) { h.set<std::int16_t>(40, 8); }},
      {"dim[2] is 0", [](CraftedHeader& h) { h.set<std::int16_t>(44, 0); }},
      {"dim[3] is -4", [](CraftedHeader& h) { h.set<std::int16_t>(46, -4); }},
      {"dim[4] is 2",
       [](CraftedHeader& h) {
         h.set<std::int16_t>(40, 4);
         h.set<std::int16_t>(48, 2);
       }},
      {"datatype is 64", [](CraftedHeader& h) { h.set<std::int16_t>(70, 64); }},
      {"bitpix is 16", [](CraftedHeader& h) { h.set<std::int16_t>(72, 16); }},
      {"vox_offset is 100", [](CraftedHeader& h) { h.set<float>(108, 100.0f); }},
      {"vox_offset is 352.5", [](CraftedHeader& h) { h.set<float>(108, 352.5f); }},
      {"vox_offset is 1000000000", [](CraftedHeader& h) { h.set<float>(108, 1e9f); }},
      {"nan; it must be a whole number", [](CraftedHeader& h) { h.set<float>(108, std::nanf("")); }},
      {"pixdim[1] is 0", [](CraftedHeader& h) { h.set<float>(80, 0.0f); }},
      {"pixdim[3] is inf", [](CraftedHeader& h) { h.set<float>(88, 1.0f / 0.0f); }},
      {"the file ends before vox_offset 400", [](CraftedHeader& h) { h.set<float>(108, 400.0f); }},
  };
  for (const auto& c : cases) {
    CraftedHeader h = base();
    c.edit(h);
    EXPECT_NE(nifti_error(dir, h, data).find(c.expected), std::string::npos)
        << "expected \"" << c.expected << "\", got \"" << nifti_error(dir, h, data) << "\"";
  }
}

TEST(ReadNifti, RefusesTruncatedDataAndVolumesPastTheLimits) {
  medload::test::TempDir dir("nifti");
  const CraftedHeader h(2, 3, 4, 4, 16);  // 24 int16 = 48 bytes
  EXPECT_NE(nifti_error(dir, h, std::vector<unsigned char>(47)).find("truncated: 47 of 48 bytes"),
            std::string::npos);
  NiftiLimits small;
  small.max_voxels = 23;
  EXPECT_NE(nifti_error(dir, h, std::vector<unsigned char>(48), small).find("24 voxels; the limit is 23"),
            std::string::npos);
  small = {};
  small.max_side = 3;
  EXPECT_NE(nifti_error(dir, h, std::vector<unsigned char>(48), small).find("dim[3] is 4; it must be 1..3"),
            std::string::npos);
  // A header claiming 2^31 voxels must fail on the limit, before any allocation.
  EXPECT_NE(nifti_error(dir, CraftedHeader(2048, 2048, 512, 2, 8), {}).find("voxels; the limit"),
            std::string::npos);
  // Shorter than a header, and not a file at all.
  std::ofstream(dir / "short.nii") << "tiny";
  EXPECT_THROW(read_nifti(dir / "short.nii"), medload::FormatError);
  EXPECT_THROW(read_nifti(dir / "absent.nii"), medload::IoError);
}

TEST(ReadNifti, RefusesACorruptGzipStream) {
  medload::test::TempDir dir("nifti");
  const std::string path = dir / "v.nii.gz";
  write_file(path, CraftedHeader(16, 16, 16, 2, 8), std::vector<unsigned char>(4096, 3), true);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (std::size_t i = 12; i < bytes.size() - 8; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5A);
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_THROW(read_nifti(path), medload::FormatError);
}

// ---- the AAL label text and the coarse labels ------------------------------------------------

TEST(CoarseClasses, FollowTheRegionNamesNotTheIds) {
  std::istringstream text(
      "1 Precentral_L 2001\n2 Precentral_R 2002\n\n91 Cerebelum_Crus1_L 9001\n"
      "109 Vermis_1_2 9100\n8 Odd_R 1\n");
  const auto c = coarse_classes_from_aal_text(text, "aal.txt");
  ASSERT_EQ(c.size(), 256u);
  EXPECT_EQ(c[1], kLeftCerebrum);
  EXPECT_EQ(c[2], kRightCerebrum);
  EXPECT_EQ(c[8], kRightCerebrum);
  EXPECT_EQ(c[91], kCerebellum);  // a left cerebellar region is cerebellum, not left cerebrum
  EXPECT_EQ(c[109], kCerebellum);
  EXPECT_EQ(c[3], kBackground);  // not named
}

TEST(CoarseClasses, RefuseTextThatDoesNotSayTheSide) {
  auto error = [](const std::string& s) {
    std::istringstream in(s);
    try {
      coarse_classes_from_aal_text(in, "aal.txt");
      return std::string();
    } catch (const medload::FormatError& e) {
      return std::string(e.what());
    }
  };
  EXPECT_NE(error("1 A_L 1\n2 Thalamus 2\n").find("aal.txt line 2: the region \"Thalamus\""),
            std::string::npos);
  EXPECT_NE(error("1 A_L 1\n1 B_R 2\n").find("id 1 is named twice"), std::string::npos);
  EXPECT_NE(error("300 A_L 1\n").find("outside 1..255"), std::string::npos);
  EXPECT_NE(error("x A_L\n").find("line 1: expected"), std::string::npos);
  EXPECT_NE(error("\n").find("no region"), std::string::npos);
}

TEST(CoarseClasses, MapEveryRegionOfThePackagesAal) {
  MEDLOAD_REQUIRE_DATA(have_mricron_data(), kNoData);
  std::ifstream in(kTemplates + "/aal.nii.txt");
  const auto c = coarse_classes_from_aal_text(in, "aal.nii.txt");
  std::array<int, kCoarseClasses> count{};
  for (int id = 1; id <= 116; ++id) ++count[c[static_cast<std::size_t>(id)]];
  EXPECT_EQ(count[kBackground], 0);  // all 116 regions are named
  EXPECT_EQ(count[kLeftCerebrum], 45);
  EXPECT_EQ(count[kRightCerebrum], 45);
  EXPECT_EQ(count[kCerebellum], 26);  // 18 hemispheric lobules + 8 vermis
}

TEST(CoarseLabelVolume, GrowsTheAtlasThroughTheBrainToTheNearestLabel) {
  // One row of 7 voxels: atlas ids 1 (left) at 0 and 2 (right) at 4; voxel 6 is brain but cut
  // off by voxel 5, which is not brain.
  NiftiVolume atlas, brain;
  atlas.nx = brain.nx = 7;
  atlas.ny = atlas.nz = brain.ny = brain.nz = 1;
  atlas.voxels = {1, 0, 0, 0, 2, 0, 0};
  brain.voxels = {1, 1, 1, 1, 1, 0, 1};
  std::vector<std::uint8_t> id_to_class(3, kBackground);
  id_to_class[1] = kLeftCerebrum;
  id_to_class[2] = kRightCerebrum;
  const auto labels = coarse_label_volume(atlas, id_to_class, brain);
  // Voxel 2 is 2 steps from both: the tie goes to the wave queued first (voxel 0's).
  EXPECT_EQ(labels, (std::vector<std::uint8_t>{1, 1, 1, 2, 2, 0, 0}));
  atlas.voxels[3] = 2.5f;
  EXPECT_THROW(coarse_label_volume(atlas, id_to_class, brain), medload::ConfigError);
  atlas.voxels[3] = 3.0f;  // past the id table
  EXPECT_THROW(coarse_label_volume(atlas, id_to_class, brain), medload::ConfigError);
  brain.nx = 6;
  EXPECT_THROW(coarse_label_volume(atlas, id_to_class, brain), medload::ConfigError);
}

TEST(ComponentBoxes, BoundEightConnectedComponentsInContinuousCoordinates) {
  // 6 wide, 5 high; value 3 forms a diagonal pair (one component), an L and a lone pixel.
  const std::vector<std::uint8_t> img = {
      3, 0, 0, 0, 0, 0,  //
      0, 3, 0, 0, 3, 0,  //
      0, 0, 0, 0, 3, 0,  //
      0, 1, 0, 3, 3, 0,  //
      0, 0, 0, 0, 0, 3,  // touches the L diagonally
  };
  const auto boxes = component_boxes(img, 6, 5, 3, 1);
  ASSERT_EQ(boxes.size(), 2u);
  EXPECT_EQ(boxes[0], (PixelBox{0, 0, 2, 2}));
  EXPECT_EQ(boxes[1], (PixelBox{3, 1, 6, 5}));
  EXPECT_EQ(component_boxes(img, 6, 5, 3, 3).size(), 1u);  // the pair (2 px) is too small
  EXPECT_EQ(component_boxes(img, 6, 5, 1, 1), (std::vector<PixelBox>{{1, 3, 2, 4}}));
  EXPECT_TRUE(component_boxes(img, 6, 5, 2, 1).empty());
  EXPECT_THROW(component_boxes(img, 5, 5, 3, 1), medload::ConfigError);
}

// ---- the slice set from the real package -------------------------------------------------------

TEST(PrepareSegmentationData, WritesPlausibleSlicesMasksBoxesAndManifest) {
  MEDLOAD_REQUIRE_DATA(have_mricron_data(), kNoData);
  medload::test::TempDir dir("segdata");
  SegmentationDataOptions o;
  o.output = dir / "seg";
  const auto r = prepare_segmentation_data(o);
  // Most of the 181 axial slices hold brain; the few at the ends do not.
  EXPECT_GT(r.slices, 100u);
  EXPECT_LT(r.slices, 181u);
  EXPECT_EQ(r.patients, (r.slices + 7) / 8);
  // Both hemispheres, of similar size (within 5%); the cerebellum smaller but present.
  const auto left = static_cast<double>(r.class_pixels[kLeftCerebrum]);
  const auto right = static_cast<double>(r.class_pixels[kRightCerebrum]);
  EXPECT_GT(left, 1e5);
  EXPECT_NEAR(left / right, 1.0, 0.05);
  EXPECT_GT(r.class_pixels[kCerebellum], 20000);
  EXPECT_LT(static_cast<double>(r.class_pixels[kCerebellum]), 0.5 * left);

  std::ifstream classes(r.class_map);
  EXPECT_EQ(nlohmann::json::parse(classes),
            (nlohmann::json{
                {"0", "background"}, {"1", "left_cerebrum"}, {"2", "right_cerebrum"}, {"3", "cerebellum"}}));

  std::ifstream manifest(r.manifest);
  std::string line;
  std::getline(manifest, line);
  EXPECT_EQ(line, "path,label,patient_id,mask,boxes");
  double z_with = 0, z_without = 0, n_with = 0, n_without = 0;
  double left_column = 0, right_column = 0, left_n = 0, right_n = 0;
  std::size_t rows = 0, boxes = 0;
  while (std::getline(manifest, line)) {
    ++rows;
    // images/zKKK.png,<label>,<patient>,masks/zKKK.png,"[[...]]"
    const auto quote = line.find(",\"");
    ASSERT_NE(quote, std::string::npos) << line;
    std::vector<std::string> f;
    std::stringstream head(line.substr(0, quote));
    for (std::string cell; std::getline(head, cell, ',');) f.push_back(cell);
    ASSERT_EQ(f.size(), 4u) << line;
    const int z = std::stoi(f[0].substr(8, 3));
    const cv::Mat image = cv::imread((fs::path(o.output) / f[0]).string(), cv::IMREAD_UNCHANGED);
    const cv::Mat mask = cv::imread((fs::path(o.output) / f[3]).string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(image.type(), CV_8UC1);
    ASSERT_EQ(mask.type(), CV_8UC1);
    ASSERT_EQ(image.size(), mask.size());
    ASSERT_EQ(image.cols, 181);
    ASSERT_EQ(image.rows, 217);
    double max_label = 0;
    cv::minMaxLoc(mask, nullptr, &max_label);
    EXPECT_LE(max_label, 3.0);
    for (int y = 0; y < mask.rows; ++y) {
      for (int x = 0; x < mask.cols; ++x) {
        const int c = mask.at<std::uint8_t>(y, x);
        if (c == kLeftCerebrum) left_column += x, ++left_n;
        if (c == kRightCerebrum) right_column += x, ++right_n;
      }
    }
    const auto j = nlohmann::json::parse(line.substr(quote + 2, line.size() - quote - 3));
    ASSERT_TRUE(j.is_array());
    EXPECT_EQ(f[1], j.empty() ? "without_cerebellum" : "with_cerebellum");
    for (const auto& b : j) {
      ASSERT_EQ(b.size(), 5u);
      EXPECT_GE(b[0].get<int>(), 0);
      EXPECT_GE(b[1].get<int>(), 0);
      EXPECT_LT(b[0].get<int>(), b[2].get<int>());
      EXPECT_LT(b[1].get<int>(), b[3].get<int>());
      EXPECT_LE(b[2].get<int>(), 181);
      EXPECT_LE(b[3].get<int>(), 217);
      EXPECT_EQ(b[4].get<int>(), 3);
      // The box's border rows and columns touch the cerebellum.
      const cv::Mat inside =
          mask(cv::Rect(b[0], b[1], b[2].get<int>() - b[0].get<int>(), b[3].get<int>() - b[1].get<int>()));
      EXPECT_GT(cv::countNonZero(inside == 3), 19);
      ++boxes;
    }
    (j.empty() ? z_without : z_with) += z;
    (j.empty() ? n_without : n_with) += 1;
  }
  EXPECT_EQ(rows, r.slices);
  EXPECT_EQ(boxes, r.boxes);
  ASSERT_GT(n_with, 10);
  ASSERT_GT(n_without, 10);
  EXPECT_LT(z_with / n_with + 30, z_without / n_without);  // the cerebellum lies below the cerebrum
  // AAL's _L regions (odd ids here) sit at low i (RAS: x = i - 90), the image's left columns.
  EXPECT_LT(left_column / left_n + 40, right_column / right_n);
}
