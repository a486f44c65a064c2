#include "dm/app/cli.hpp"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <thread>
#include <vector>

namespace dm {

namespace {
// `text` as an integer of type T, or nothing: the whole string must be the number.
template <class T>
bool parse_whole(const std::string& text, T& value) {
  const char* first = text.data();
  const char* last = text.data() + text.size();
  if (first != last && *first == '+') ++first;  // from_chars takes no '+'
  const auto r = std::from_chars(first, last, value);
  return r.ec == std::errc() && r.ptr == last && first != last;
}
}  // namespace

CLI::Validator whole_number(int64_t lo, int64_t hi) {
  const std::string range = std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        int64_t v = 0;
        if (!parse_whole(text, v) || v < lo || v > hi)
          return "expects a whole number from " + range + ", got '" + text + "'";
        return "";
      },
      "INT in " + range);
}

int max_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

Chapter::Chapter(std::string name, std::string description, int default_threads)
    : name_(std::move(name)),
      app_(std::move(description), name_),
      default_threads_(default_threads) {
  options_.out = std::filesystem::path("runs") / name_;
  app_.add_flag("--quick", options_.quick,
                "CI-sized run (7 s to 1 min per chapter on one CPU thread)");
  app_.add_option("--device", options_.device_flag, "auto | cpu | cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  // The seed is read as text and converted here: CLI11 would wrap "-1" and
  // saturate "99999999999999999999" to 2⁶⁴ − 1 without a word.
  app_.add_option("--seed", seed_text_, "random seed, 0 to 18446744073709551615")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            uint64_t v = 0;
            if (!parse_whole(text, v))
              return "expects a whole number from 0 to 18446744073709551615, got '" + text + "'";
            return "";
          },
          "UINT64"))
      ->capture_default_str();
  app_.add_option("--out", options_.out,
                  "output folder for figures and metrics.json; what an earlier run left there "
                  "is first moved to <out>.earlier-N (model files, *.pt, stay)")
      ->capture_default_str();
  app_.add_option("--threads", options_.threads,
                  "torch intra-op threads, at most this machine's " +
                      std::to_string(max_threads()) + " (0 = this chapter's default)")
      ->check(whole_number(0, max_threads()));
  app_.add_option("--data", options_.data,
                  "dataset folder (default: $DM_DATA_DIR, then Debian's package path)");
}

const ChapterOptions& Chapter::parse(int argc, char** argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::exit(app_.exit(e));
  } catch (const CLI::ParseError& e) {
    std::cerr << name_ << ": error: " << e.what() << " (see --help)\n";
    std::exit(2);
  }
  parse_whole(seed_text_, options_.seed);  // checked above
  try {
    options_.device = choose_device(options_.device_flag);
    ensure_writable_dir(options_.out);
  } catch (const Error& e) {
    std::cerr << name_ << ": error: " << e.what();
    if (!e.hint().empty()) std::cerr << " — " << e.hint();
    std::cerr << "\n";
    std::exit(2);
  }
  seed_everything(options_.seed);
  set_threads(options_.threads > 0 ? options_.threads : default_threads_);
  std::cout << "== " << name_ << (options_.quick ? " (--quick)" : "") << " | device "
            << device_name(options_.device) << " | seed " << options_.seed << " | threads "
            << torch::get_num_threads() << " | out " << options_.out.string() << "\n";
  return options_;
}

void Chapter::begin_work() {
  if (begun_) return;
  begun_ = true;
  try {
    const auto moved = move_earlier_results(options_.out);
    if (!moved.empty())
      std::cout << "   the earlier run's results in " << options_.out.string() << " are now in "
                << moved.string() << " (delete it when done with them)\n";
  } catch (const std::filesystem::filesystem_error& e) {
    throw Error("cannot move the earlier results in " + options_.out.string() + " aside (" +
                    e.code().message() + ")",
                "pass another --out");
  }
}

std::filesystem::path move_earlier_results(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::vector<fs::path> results;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() != ".pt") results.push_back(e.path());
  if (results.empty()) return {};
  const fs::path clean = dir.lexically_normal().has_filename()
                             ? dir.lexically_normal()
                             : dir.lexically_normal().parent_path();
  fs::path aside;
  for (int n = 1;; ++n) {
    aside = clean.string() + ".earlier-" + std::to_string(n);
    if (!fs::exists(aside)) break;
  }
  fs::create_directories(aside);
  for (const auto& p : results) fs::rename(p, aside / p.filename());
  return aside;
}

void ensure_writable_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw Error(
        "cannot create output folder '" + dir.string() + "'" + (ec ? ": " + ec.message() : ""),
        "pass a writable folder with --out");
  }
  const auto probe = dir / ".dm_write_probe";
  {
    std::ofstream f(probe);
    if (!f) {
      throw Error("output folder '" + dir.string() + "' is not writable",
                  "pass a writable folder with --out");
    }
  }
  std::filesystem::remove(probe, ec);
}

int run_main(const std::function<void()>& body) {
  try {
    body();
    return 0;
  } catch (const Error& e) {
    std::cerr << "error: " << e.what();
    if (!e.hint().empty()) std::cerr << " — " << e.hint();
    std::cerr << "\n";
  } catch (const c10::Error& e) {
    std::cerr << "error (torch): " << e.what_without_backtrace() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}

}  // namespace dm
