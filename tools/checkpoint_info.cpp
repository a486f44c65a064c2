// checkpoint_info — what a checkpoint of this suite holds, and whether its
// tensors still match the checksum written with them:
//
//   build/bin/checkpoint_info data/checkpoints/ddpm_fashion.pt
//   build/bin/checkpoint_info --json runs/04_ddpm/unet_checkpoint.pt
//   build/bin/checkpoint_info --seal old_export.pt   # add a checksum to an older file
//
// Exit code 0 when every file checks, 1 when one does not (or cannot be read).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "dm/app/cli.hpp"
#include "dm/data/quality.hpp"
#include "dm/nn/train.hpp"

int main(int argc, char** argv) {
  CLI::App app("checkpoint_info — a checkpoint's description and its tensors' checksum");
  std::vector<std::string> files;
  bool as_json = false, seal = false;
  app.add_option("files", files, "checkpoint files (.pt) written by this suite")->required();
  app.add_flag("--json", as_json, "print the whole description as JSON");
  app.add_flag("--seal", seal,
               "a file written before checksums existed (exported weights, the classifier): add "
               "the checksum (the tensors are unchanged)");
  CLI11_PARSE(app, argc, argv);
  return dm::run_main([&] {
    bool all_ok = true;
    for (const auto& f : files) {
      if (seal) {
        const auto info = dm::train::read_checkpoint_info(f);
        if (info.contains("model") && info["model"].is_object() &&
            info["model"].value("kind", "") == "fashion_classifier") {
          if (!info.contains("checksum")) {  // written again with the same tensors, now sealed
            auto net = dm::quality::load_classifier(f, torch::kCPU);
            dm::quality::save_classifier(net, f, info.value("extra", nlohmann::json::object()));
          }
        } else {
          dm::train::seal_weights(f);
        }
        std::printf("%s: sealed\n", f.c_str());
      }
      const auto r = dm::train::verify_file(f);
      if (as_json) {
        std::cout << r.dump(2) << "\n";
      } else {
        const auto& d = r["description"];
        std::printf("%s: %s", f.c_str(), r["format"].get<std::string>().c_str());
        if (d.contains("step")) std::printf(", step %lld", (long long)d["step"].get<int64_t>());
        if (d.contains("dtype")) std::printf(", %s", d["dtype"].get<std::string>().c_str());
        std::printf("\n");
      }
      for (const auto& p : r["parts"]) {
        const std::string stored = p["stored"], computed = p["computed"];
        const bool ok = p["ok"];
        all_ok = all_ok && ok;
        if (as_json) continue;
        std::printf("  %-8s %4lld tensors  %s\n", p["part"].get<std::string>().c_str(),
                    (long long)p["tensors"].get<int64_t>(),
                    stored.empty() ? ("no checksum stored (written before checksums); now " +
                                      computed + " — --seal adds it")
                                         .c_str()
                    : ok
                        ? (computed + " ok").c_str()
                        : ("DAMAGED: stored " + stored + ", the tensors give " + computed).c_str());
      }
    }
    if (!all_ok) throw dm::Error("a file's tensors do not match their checksum");
  });
}
