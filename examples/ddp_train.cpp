// ddp_train: data-parallel training on N processes of one machine with c10d's ProcessGroupGloo
// over loopback, a TCPStore for the rendezvous, medload's distributed sampler wrapper (one
// global sample stream, a disjoint slice per rank) and a gradient allreduce every step.
//
//   ddp_train --world-size 2 --cache out/cache.h5 --epochs 2 --metrics-out out/ddp.json
//
// Without --rank, the program is the launcher: it starts W copies of itself (--rank 0..W-1) on
// a free loopback port, waits for them, checks that every rank ended with the same parameters,
// and writes {"world_size": W, "params_identical": true, "ranks": [{...}, ...]} to --metrics-out.
// With --rank, it is one rank (start W of them yourself, possibly on several machines, with the
// same --master-addr and --master-port).
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "cli.h"
#include "integer_options.h"
#include "medload/core/error.h"
#include "medload/core/file_descriptor.h"

namespace {

using medload::examples::CommonArgs;

struct DdpArgs {
  std::size_t world_size = 2;
  int rank = -1;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;
  int timeout_s = 300;
};

// A port the kernel considers free right now (bound to port 0, then released).
int free_port() {
  const medload::core::FileDescriptor fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw medload::IoError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw medload::IoError(std::string("cannot find a free loopback port: ") + std::strerror(errno));
  }
  return ntohs(addr.sin_port);
}

std::string rank_path(const std::string& path, std::size_t rank) {
  return path + ".rank" + std::to_string(rank);
}

// One rank: join the process group, train, write this rank's metrics.
int run_rank(const DdpArgs& d, CommonArgs args) {
  const auto rank = static_cast<std::size_t>(d.rank);
  if (rank >= d.world_size) {
    throw medload::ConfigError("--rank is " + std::to_string(d.rank) + "; it must be below --world-size " +
                               std::to_string(d.world_size));
  }
  if (d.master_port <= 0 || d.master_port > 65535) {
    throw medload::ConfigError("--master-port is " + std::to_string(d.master_port) +
                               "; give a port in 1..65535");
  }
  c10d::TCPStoreOptions store_options;
  store_options.port = static_cast<std::uint16_t>(d.master_port);
  store_options.isServer = rank == 0;
  store_options.numWorkers = static_cast<int>(d.world_size);
  store_options.waitWorkers = true;
  store_options.timeout = std::chrono::seconds(d.timeout_s);
  auto store = c10::make_intrusive<c10d::TCPStore>(d.master_addr, store_options);

  auto pg_options = c10d::ProcessGroupGloo::Options::create();
  pg_options->timeout = std::chrono::seconds(d.timeout_s);
  pg_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(d.master_addr));
  auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, static_cast<int>(rank),
                                                           static_cast<int>(d.world_size), pg_options);

  // Each rank keeps its own checkpoint; a resume needs all of them (same world size).
  if (!args.checkpoint.empty()) {
    args.checkpoint = (std::filesystem::path(args.checkpoint) / ("rank" + std::to_string(rank))).string();
  }
  if (rank != 0) args.quiet = true;
  const auto data = medload::examples::load_training_data(args);
  auto options = medload::examples::train_options(args);
  options.world_size = d.world_size;
  options.rank = rank;
  options.allreduce_sum = [&group](torch::Tensor& t) {
    std::vector<at::Tensor> tensors{t};
    group->allreduce(tensors)->wait();
  };
  options.broadcast = [&group](torch::Tensor& t) {
    std::vector<at::Tensor> tensors{t};
    c10d::BroadcastOptions b;
    b.rootRank = 0;
    group->broadcast(tensors, b)->wait();
  };
  const auto result = medload::examples::train(data, options);
  auto j = medload::examples::metrics_json(result, data, args);
  j["rank"] = rank;
  j["world_size"] = d.world_size;
  // A last collective: every rank waits until all have finished training before leaving.
  std::vector<at::Tensor> done{torch::ones({1})};
  group->allreduce(done)->wait();
  if (!args.metrics_out.empty()) medload::examples::write_json_file(rank_path(args.metrics_out, rank), j);
  if (rank == 0 && !args.quiet) {
    std::cerr << "rank 0: " << result.steps << " steps; parameter checksum " << result.param_checksum << "\n";
  }
  return 0;
}

// The caller's arguments after the program name, less the flags the launcher sets per rank (an
// option given twice is an error for CLI11), each with its value.
std::vector<std::string> forwarded_arguments(int argc, char** argv) {
  const std::vector<std::string> base(argv, argv + argc);
  const std::vector<std::string> per_rank = {"--metrics-out", "--rank", "--master-addr", "--master-port"};
  std::vector<std::string> forwarded;
  for (std::size_t i = 1; i < base.size(); ++i) {
    bool drop = false;
    for (const auto& flag : per_rank) {
      if (base[i] == flag) {
        ++i;  // and its value
        drop = true;
        break;
      }
      if (base[i].rfind(flag + "=", 0) == 0) {
        drop = true;
        break;
      }
    }
    if (!drop) forwarded.push_back(base[i]);
  }
  return forwarded;
}

// Forks and execs this program as rank `rank`: `program`, the forwarded arguments, then the
// rank, the rendezvous address and port, and where to write its metrics.
pid_t start_rank(const std::string& program, const std::vector<std::string>& forwarded, std::size_t rank,
                 const std::string& master_addr, int port, const std::string& metrics) {
  std::vector<std::string> a{program};
  a.insert(a.end(), forwarded.begin(), forwarded.end());
  for (const std::string& extra :
       {std::string("--rank"), std::to_string(rank), std::string("--master-addr"), master_addr,
        std::string("--master-port"), std::to_string(port), std::string("--metrics-out"), metrics}) {
    a.push_back(extra);
  }
  std::vector<char*> cargs;
  for (auto& s : a) cargs.push_back(s.data());
  cargs.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw medload::IoError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::execv("/proc/self/exe", cargs.data());
    std::perror("ddp_train: execv /proc/self/exe");
    ::_exit(127);
  }
  return pid;
}

// Waits for every rank; when one fails, stops the others. True when all exited with 0.
bool wait_for_ranks(const std::vector<pid_t>& children) {
  int failures = 0;
  std::size_t remaining = children.size();
  while (remaining > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    --remaining;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && failures++ == 0) {
      std::cerr << "ddp_train: a rank failed ("
                << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status)))
                << "); stopping the others\n";
      for (pid_t child : children) {
        if (child != pid) ::kill(child, SIGTERM);
      }
    }
  }
  return failures == 0;
}

// Reads (and removes) each rank's metrics, checks that all ended with the same parameters and
// writes the merged metrics to --metrics-out. Exit code 0 when the parameters are identical.
int merge_rank_metrics(const DdpArgs& d, const CommonArgs& args, const std::string& metrics) {
  nlohmann::json merged;
  merged["world_size"] = d.world_size;
  merged["ranks"] = nlohmann::json::array();
  std::string checksum;
  bool identical = true;
  for (std::size_t r = 0; r < d.world_size; ++r) {
    const std::string path = rank_path(metrics, r);
    std::ifstream in(path);
    if (!in) throw medload::IoError("rank " + std::to_string(r) + " wrote no metrics to " + path);
    nlohmann::json j;
    in >> j;
    in.close();
    std::filesystem::remove(path);
    const auto c = j.at("param_checksum").get<std::string>();
    if (r == 0) checksum = c;
    identical = identical && c == checksum;
    merged["ranks"].push_back(std::move(j));
  }
  merged["params_identical"] = identical;
  if (!args.metrics_out.empty()) medload::examples::write_json_file(args.metrics_out, merged);
  std::cerr << "ddp_train: parameters " << (identical ? "identical" : "DIFFER") << " on all " << d.world_size
            << " ranks (rank 0 checksum " << checksum << ")\n";
  return identical ? 0 : 1;
}

// The launcher: start W ranks of this program, wait, check and merge their results.
int launch(const DdpArgs& d, const CommonArgs& args, int argc, char** argv) {
  if (d.world_size < 1 || d.world_size > 64) {
    throw medload::ConfigError("--world-size is " + std::to_string(d.world_size) + "; it must be in 1..64");
  }
  const int port = d.master_port > 0 ? d.master_port : free_port();
  // Every rank writes its metrics; the launcher needs them for the parameter check.
  const std::string metrics =
      args.metrics_out.empty()
          ? (std::filesystem::temp_directory_path() / ("ddp_train_" + std::to_string(::getpid()) + ".json"))
                .string()
          : args.metrics_out;
  const std::vector<std::string> forwarded = forwarded_arguments(argc, argv);
  std::vector<pid_t> children;
  for (std::size_t r = 0; r < d.world_size; ++r) {
    children.push_back(start_rank(argv[0], forwarded, r, d.master_addr, port, metrics));
  }
  std::cerr << "ddp_train: started " << d.world_size << " ranks on " << d.master_addr << ":" << port << "\n";
  if (!wait_for_ranks(children)) return 1;
  return merge_rank_metrics(d, args, metrics);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Data-parallel training with c10d ProcessGroupGloo over loopback and medload's loader"};
  CommonArgs args;
  DdpArgs d;
  medload::examples::add_common_flags(app, args);
  app.add_option("--world-size", d.world_size, "number of ranks")->required()->check(CLI::Range(1, 64));
  app.add_option("--rank", d.rank, "this process's rank (without it, start all ranks locally)");
  app.add_option("--master-addr", d.master_addr, "address of rank 0's TCPStore")->capture_default_str();
  app.add_option("--master-port", d.master_port, "port of rank 0's TCPStore (launcher: a free one)");
  app.add_option("--timeout", d.timeout_s, "seconds to wait for the other ranks")->capture_default_str();
  try {
    medload::cli::require_decimal_integers(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is a success; a bad flag is a usage error
  }
  return medload::examples::run_guarded(
      "ddp_train", [&] { return d.rank >= 0 ? run_rank(d, args) : launch(d, args, argc, argv); });
}
