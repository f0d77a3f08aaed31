// medload's gamma, brightness, contrast and affine warp against torchvision.transforms.functional
// (the outside reference), on the same inputs and parameters. The test writes the inputs, the
// parameters and medload's outputs (CPU path, uint8 and float32; tensor path, float32) to a
// temporary folder and runs tests/augment/torchvision_reference.py with Debian's python3, which
// applies torchvision and checks the tolerances stated there (and in docs/augment.md).

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <unistd.h>

#include "augment_test_util.h"
#include "detail.h"
#include "medload/augment/augmenter.h"

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

struct Case {
  std::string name;
  std::string op;        // gamma | brightness | contrast | affine
  nlohmann::json tv;     // torchvision's arguments
  AppliedParams params;  // medload's
};

}  // namespace

TEST(TorchvisionReference, PointOpsAndAffineAgreeWithinStatedTolerances) {
  const char* python = "/usr/bin/python3";
  if (!fs::exists(python)) {
    if (std::getenv("MEDLOAD_REQUIRE_CORPUS") != nullptr) FAIL() << "no " << python;
    GTEST_SKIP() << "no " << python << " (scripts/setup.sh installs python3-torchvision)";
  }
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

  const std::string script = std::string(MEDLOAD_SOURCE_DIR) + "/tests/augment/torchvision_reference.py";
  const std::string log = (dir / "log.txt").string();
  const std::string command = std::string(python) + " " + script + " " + dir.string() + " > " + log + " 2>&1";
  const int rc = std::system(command.c_str());
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::cout << text;
  EXPECT_EQ(rc, 0) << text;
  EXPECT_NE(text.find("cases checked: " + std::to_string(3 * cases.size())), std::string::npos) << text;
  fs::remove_all(dir);
}
