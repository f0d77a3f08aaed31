// medload's gamma, brightness, contrast and affine warp against torchvision.transforms.functional
// (the outside reference), on the same inputs and parameters. The test writes the inputs, the
// parameters and medload's outputs (CPU path, uint8 and float32; tensor path, float32) to a
// temporary folder and runs tests/augment/torchvision_reference.py with Debian's python3, which
// applies torchvision and checks the tolerances stated there (and in docs/augment.md). The mask
// test does the same for the label-mask warp against torchvision's nearest-neighbour affine.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "augment_test_util.h"
#include "detail.h"
#include "medload/augment/augmenter.h"
#include "medload/augment/target_warp.h"
#include "medload_test/require_data.h"

using namespace medload::augment;
using namespace medload::augment::test;
namespace fs = std::filesystem;

namespace {

void write_raw(const torch::Tensor& t, const fs::path& path) {
  const torch::Tensor c = t.contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()),
            static_cast<std::streamsize>(c.numel() * c.element_size()));
  ASSERT_TRUE(out.good()) << path;
}

// Runs tests/augment/torchvision_reference.py on `dir`; returns its exit status and output.
std::pair<int, std::string> run_reference(const fs::path& dir) {
  const std::string script = std::string(MEDLOAD_SOURCE_DIR) + "/tests/augment/torchvision_reference.py";
  const std::string log = (dir / "log.txt").string();
  const std::string command = "/usr/bin/python3 " + script + " " + dir.string() + " > " + log + " 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream in(log);
  return {rc, std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())};
}

struct Case {
  std::string name;
  std::string op;        // gamma | brightness | contrast | affine
  nlohmann::json tv;     // torchvision's arguments
  AppliedParams params;  // medload's
};

}  // namespace

TEST(TorchvisionReference, PointOpsAndAffineAgreeWithinStatedTolerances) {
  const char* python = "/usr/bin/python3";
  MEDLOAD_REQUIRE_DATA(fs::exists(python),
                       "no " << python << " (scripts/setup.sh installs python3-torchvision)");
  const std::int64_t n = 4, h = 56, w = 64;
  const fs::path dir = fs::temp_directory_path() / ("medload_tv_ref_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const torch::Tensor f32 = synthetic_float(n, 1, h, w, 3);
  const torch::Tensor u8 = synthetic_u8(n, 1, h, w, 3);
  write_raw(f32, dir / "input_f32.bin");
  write_raw(u8, dir / "input_u8.bin");

  std::vector<Case> cases;
  auto point = [&](const std::string& op, double value) {
    AppliedParams p = identity_params();
    (op == "gamma" ? p.gamma : op == "brightness" ? p.brightness : p.contrast) = value;
    cases.push_back({op + "_" + std::to_string(value).substr(0, 4), op, {{"factor", value}}, p});
  };
  for (double g : {0.7, 1.45}) point("gamma", g);
  for (double b : {0.8, 1.2}) point("brightness", b);
  for (double c : {0.75, 1.25}) point("contrast", c);
  auto affine = [&](const std::string& name, double angle, double tx_px, double ty_px, double scale) {
    AppliedParams p = identity_params();
    p.rotation_degrees = angle;
    p.translate_x = tx_px / w;
    p.translate_y = ty_px / h;
    p.scale = scale;
    cases.push_back({name, "affine", {{"angle", angle}, {"translate", {tx_px, ty_px}}, {"scale", scale}}, p});
  };
  affine("affine_rot7_shift_zoom", 7.0, 3.0, -2.0, 1.05);
  affine("affine_rot-9.5_shrink", -9.5, 0.0, 0.0, 0.95);
  affine("affine_shift_only", 0.0, -4.0, 5.0, 1.0);
  affine("affine_fractional", 3.3, 1.7, -0.6, 1.02);

  nlohmann::json manifest = {{"n", n}, {"h", h}, {"w", w}, {"cases", nlohmann::json::array()}};
  Augmenter augmenter(AugmentOptions(), 1);
  for (const Case& c : cases) {
    const std::vector<AppliedParams> params(n, c.params);
    torch::Tensor cpu_f = f32.clone(), cpu_u = u8.clone(), tensor_f = f32.clone();
    augmenter.replay(cpu_f, params);
    augmenter.replay(cpu_u, params);
    medload::augment::detail::apply_tensor_path(tensor_f, params);
    for (const auto& [path, input, out] :
         {std::tuple<std::string, std::string, torch::Tensor>{"cpu", "f32", cpu_f},
          {"cpu", "u8", cpu_u},
          {"tensor", "f32", tensor_f}}) {
      const std::string file = c.name + "_" + path + "_" + input + ".bin";
      write_raw(out, dir / file);
      manifest["cases"].push_back(
          {{"name", c.name}, {"op", c.op}, {"args", c.tv}, {"path", path}, {"input", input}, {"file", file}});
    }
  }
  std::ofstream(dir / "cases.json") << manifest.dump(1);

  const auto [rc, text] = run_reference(dir);
  std::cout << text;
  EXPECT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("cases checked: " + std::to_string(3 * cases.size())), std::string::npos) << text;
  fs::remove_all(dir);
}

TEST(TorchvisionReference, MaskWarpAgreesWithNearestNeighbourAffine) {
  const char* python = "/usr/bin/python3";
  MEDLOAD_REQUIRE_DATA(fs::exists(python),
                       "no " << python << " (scripts/setup.sh installs python3-torchvision)");
  const int h = 56, w = 64;
  const fs::path dir = fs::temp_directory_path() / ("medload_tv_mask_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  // Two masks: "shapes" (an L, a disc and thin bars, labels 1..5: what masks look like) and
  // "noise" (every pixel its own label 0..9: every single nearest-neighbour choice shows).
  std::vector<std::uint16_t> masks(2 * h * w);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const bool l = (x >= 10 && x < 18 && y >= 8 && y < 44) || (x >= 10 && x < 34 && y >= 36 && y < 44);
      const bool disc = (x - 45.5) * (x - 45.5) + (y - 20.5) * (y - 20.5) <= 11.0 * 11.0;
      const int label = l                     ? 1
                        : disc                ? 2
                        : (y == 50 && x > 5)  ? 3
                        : (x == 58 && y > 30) ? 4
                        : (x + y) % 17 == 0   ? 5
                                              : 0;
      masks[y * w + x] = static_cast<std::uint16_t>(label);
      const std::size_t i = static_cast<std::size_t>(y) * w + x;
      masks[h * w + i] = static_cast<std::uint16_t>((i * 7919 + i / 13) % 10);
    }
  }
  std::ofstream(dir / "masks_u16.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(masks.data()), static_cast<std::streamsize>(masks.size() * 2));

  nlohmann::json manifest = {
      {"n", 2}, {"h", h}, {"w", w}, {"masks", {"shapes", "noise"}}, {"cases", nlohmann::json::array()}};
  auto add = [&](const std::string& name, bool hflip, bool vflip, double angle, double tx_px, double ty_px,
                 double scale) {
    const WarpGeometry g(hflip, vflip, angle, tx_px / w, ty_px / h, scale);
    std::vector<std::uint16_t> out(masks.size());
    for (std::size_t k = 0; k < 2; ++k) {
      warp_mask(masks.data() + k * h * w, out.data() + k * h * w, w, h, g);
    }
    const std::string file = "mask_" + name + ".bin";
    std::ofstream(dir / file, std::ios::binary)
        .write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * 2));
    manifest["cases"].push_back({{"name", name},
                                 {"file", file},
                                 {"args",
                                  {{"horizontal_flip", hflip},
                                   {"vertical_flip", vflip},
                                   {"angle", angle},
                                   {"translate", {tx_px, ty_px}},
                                   {"scale", scale}}}});
  };
  add("rot7_shift_zoom", false, false, 7.0, 3.0, -2.0, 1.05);
  add("rot-9.5_shrink", false, false, -9.5, 0.0, 0.0, 0.95);
  add("shift_only", false, false, 0.0, -4.0, 5.0, 1.0);
  add("fractional", false, false, 3.3, 1.7, -0.6, 1.02);
  add("hflip_rot5", true, false, 5.0, 2.0, 1.0, 1.0);
  add("vflip_shift", false, true, 0.0, 1.3, -2.2, 0.97);
  add("both_flips_rot-4", true, true, -4.0, 0.0, 0.0, 1.08);
  add("quarter_turn", false, false, 90.0, 0.0, 0.0, 1.0);
  std::ofstream(dir / "mask_cases.json") << manifest.dump(1);

  const auto [rc, text] = run_reference(dir);
  std::cout << text;
  EXPECT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("mask cases checked: " + std::to_string(2 * manifest["cases"].size())),
            std::string::npos)
      << text;
  fs::remove_all(dir);
}
