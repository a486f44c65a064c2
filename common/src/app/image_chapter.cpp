#include "dm/app/image_chapter.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "dm/app/image.hpp"
#include "dm/app/plot.hpp"
#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"

namespace fs = std::filesystem;
using nlohmann::json;
using torch::Tensor;

namespace dm::app {

Tensor enlarge(const Tensor& images, int64_t factor) {
  return images.repeat_interleave(factor, -2).repeat_interleave(factor, -1);
}

Tensor sample_in_batches(int64_t n, int64_t batch,
                         const std::function<Tensor(int64_t, int64_t)>& draw) {
  if (n < 1 || batch < 1) throw Error("sample_in_batches: need n ≥ 1 and batch ≥ 1");
  std::vector<Tensor> parts;
  for (int64_t done = 0; done < n; done += batch)
    parts.push_back(draw(std::min(batch, n - done), done).to(torch::kCPU));
  return torch::cat(parts);
}

void require_checkpoint(const fs::path& checkpoint, const json& model_json, bool train) {
  if (train) return;
  if (!fs::exists(checkpoint))
    throw Error("no checkpoint to sample from at " + checkpoint.string(),
                "pass --train to train the U-Net here (hours on a CPU, minutes on a GPU; "
                "--quick --train: a tiny one in a minute)");
  train::check_compatible(checkpoint, model_json);
}

void require_training_folder(const fs::path& checkpoint, bool train, bool resume, bool overwrite) {
  if (!train) return;
  if (resume && overwrite) throw Error("--resume and --overwrite contradict each other");
  if (resume && !fs::exists(checkpoint))
    throw Error("--resume: there is no training run to continue at " + checkpoint.string(),
                "drop --resume to start one, or pass the --out of the run to continue");
  if (!resume && !overwrite && fs::exists(checkpoint)) {
    int64_t step = 0;
    try {
      step = train::read_checkpoint_info(checkpoint).value("step", int64_t(0));
    } catch (const std::exception&) {
    }
    throw Error(checkpoint.string() + " holds a training run (step " + std::to_string(step) +
                    ") that a new run would replace",
                "continue it with --resume, replace it with --overwrite, or pass another --out");
  }
}

namespace {
void plot_loss(const std::vector<double>& steps, const std::vector<double>& losses,
               const std::string& title, const std::string& label, const Chapter& ch,
               MetricsFile& metrics) {
  plot::Figure fig;
  fig.ax().title(title).xlabel("step").ylabel(label).logy().line(steps, losses, "loss");
  fig.save(ch.out("loss"));
  metrics.figure("loss.svg");
}
}  // namespace

json load_shipped(torch::nn::Module& model, const json& model_config, const fs::path& path,
                  const Chapter& ch, MetricsFile& metrics, const std::string& loss_label) {
  train::load_weights(model, model_config, path);
  const json manifest = train::read_checkpoint_info(path).value("manifest", json());
  if (manifest.contains("loss_steps"))
    plot_loss(manifest["loss_steps"].get<std::vector<double>>(),
              manifest["losses"].get<std::vector<double>>(),
              "training loss (from the checkpoint's manifest)", loss_label, ch, metrics);
  model.eval();
  return manifest;
}

ShippedUNet load_unet(const fs::path& path, const torch::Device& device) {
  if (!fs::exists(path))
    throw Error("no checkpoint at " + path.string(),
                "the shipped weights live in data/checkpoints/ (or pass another file)");
  const json info = train::read_checkpoint_info(path);
  ShippedUNet out;
  out.description = info.value("model", json::object());
  // The description holds the U-Net's fields and the chapter's own (schedule,
  // σ range, "net", and "model": "ncsn" for chapter 3's): keep the U-Net's.
  json unet = json::object();
  for (const char* key :
       {"in_channels", "out_channels", "base_channels", "channel_mults", "res_blocks",
        "attention_resolutions", "dropout", "num_classes", "cond_channels", "groups", "image_size"})
    if (out.description.contains(key)) unet[key] = out.description[key];
  try {
    out.net = nn::UNet(nn::unet_config_from_json(unet));
  } catch (const std::exception& e) {
    throw Error("checkpoint " + path.string() + " does not hold a U-Net: " + e.what());
  }
  out.spec = nn::net_spec_of(out.description);
  out.net->to(device);
  train::load_weights(*out.net, out.description, path);
  out.net->eval();
  out.manifest = info.value("manifest", json::object());
  return out;
}

json finish_training(train::Trainer& trainer, torch::nn::Module& model, const json& model_config,
                     const train::TrainResult& result, int64_t batch, const Chapter& ch,
                     MetricsFile& metrics, const std::string& export_name,
                     const std::string& loss_label, const json& extra) {
  const auto& opt = ch.options();
  const double seconds = result.seconds;
  std::printf("  %lld steps in %.0f s (%.3f s/step); loss %.4f → %.4f\n", (long long)result.step,
              seconds, seconds / double(std::max<int64_t>(1, result.step - result.resumed_from)),
              result.losses.front(), result.losses.back());
  metrics["training"] = {{"steps", result.step},
                         {"batch", batch},
                         {"seconds", seconds},
                         {"loss_first", result.losses.front()},
                         {"loss_last", result.losses.back()},
                         {"loss_steps", result.loss_steps},
                         {"losses", result.losses}};
  plot_loss(result.loss_steps, result.losses, "training loss (running mean)", loss_label, ch,
            metrics);
  trainer.ema().copy_to(model);
  model.eval();
  json manifest = {{"steps", result.step},
                   {"loss_steps", result.loss_steps},
                   {"losses", result.losses},
                   {"seed", opt.seed},
                   {"device", device_name(opt.device)},
                   {"batch", batch},
                   {"wall_seconds_this_run", seconds}};
  manifest.update(extra);
  metrics["training"].update(extra);
  if (!opt.quick) {
    train::export_weights(model, model_config, ch.out(export_name), manifest);
    std::cout << "  exported the EMA weights (float16) to " << ch.out(export_name).string() << "\n";
  }
  return manifest;
}

ImageTraining image_training(const TrainingFlags& flags, int64_t default_steps, int64_t batch) {
  ImageTraining t;
  t.train = flags.train;
  t.resume = flags.resume;
  t.overwrite = flags.overwrite;
  t.init = flags.init;
  t.steps = flags.steps;
  t.gpu = flags.gpu;
  t.default_steps = default_steps;
  t.batch = batch;
  return t;
}

void add_training_flags(CLI::App& app, TrainingFlags& f, const std::string& shipped) {
  auto* train = app.add_flag("--train", f.train,
                             "train the U-Net here instead of sampling the shipped checkpoint");
  auto* resume =
      app.add_flag("--resume", f.resume, "with --train: continue from <out>/unet_checkpoint.pt")
          ->needs(train);
  app.add_flag("--overwrite", f.overwrite,
               "with --train: start over, replacing <out>/unet_checkpoint.pt if there is one")
      ->needs(train)
      ->excludes(resume);
  app.add_option("--init", f.init,
                 "with --train: start from these weights (e.g. the shipped checkpoint) and train "
                 "further, with a fresh optimizer")
      ->needs(train);
  app.add_option("--steps", f.steps,
                 "with --train: U-Net training steps (default 20000; --quick --train: 300, a tiny "
                 "U-Net)")
      ->check(whole_number(1, 100000000))
      ->needs(train);
  add_gpu_flags(app, f.gpu);
  f.checkpoint = train::checkpoints_dir() / shipped;
  app.add_option("--checkpoint", f.checkpoint, "the weights to sample (not with --train)")
      ->capture_default_str()
      ->excludes(train);
}

void require_before_work(const Chapter& ch, const TrainingFlags& f, const json& model_json) {
  require_checkpoint(f.checkpoint, model_json, f.train);
  require_training_folder(ch.out("unet_checkpoint.pt"), f.train, f.resume, f.overwrite);
}

void add_gpu_flags(CLI::App& app, GpuOptions& gpu) {
  app.add_flag("--cuda-graphs", gpu.cuda_graphs,
               "CUDA: sample by replaying the U-Net from CUDA graphs (one per batch shape)");
  app.add_flag("--bf16", gpu.bf16, "CUDA: train under bf16 autocast (weights and Adam in float32)");
  app.add_flag("--channels-last", gpu.channels_last,
               "CUDA: train with the convolution weights in channels-last memory");
}

// ANCHOR: load_or_train
TrainedImageModel load_or_train(const Chapter& ch, const ImageModel& m, const ImageTraining& t,
                                const data::Dataset& train_set, MetricsFile& metrics) {
  const auto& opt = ch.options();
  TrainedImageModel out;
  out.net = nn::UNet(m.config);
  std::cout << "  " << nn::describe(out.net) << "\n";
  out.net->to(opt.device);
  out.model = std::make_unique<nn::NetModel>(out.net, m.spec, m.process);
  if (t.gpu.cuda_graphs) {
    if (opt.device.is_cuda())
      out.model->use_cuda_graphs();
    else
      std::cout << "  --cuda-graphs applies on CUDA only; sampling on " << opt.device.str()
                << " runs eagerly\n";
  }

  if (!t.train) {  // require_checkpoint has checked the file before any work
    std::cout << "  loading the shipped weights " << m.checkpoint.string()
              << " (--train retrains)\n";
    out.manifest = load_shipped(*out.net, m.description, m.checkpoint, ch, metrics, m.loss_label);
    out.source = "checkpoint " + m.checkpoint.filename().string();
    return out;
  }
  const fs::path checkpoint = ch.out("unet_checkpoint.pt");
  require_training_folder(checkpoint, t.train, t.resume, t.overwrite);
  std::cout << "  " << m.training_title << "\n";
  train::TrainConfig tc;
  tc.steps = t.steps > 0 ? t.steps : t.default_steps;
  tc.lr = opt.quick ? 1e-3 : 2e-4;
  tc.warmup = opt.quick ? 20 : 500;
  tc.ema_decay = opt.quick ? 0.95 : 0.999;
  tc.log_every = opt.quick ? 10 : 100;
  tc.checkpoint_every = opt.quick ? tc.steps : t.checkpoint_every;
  tc.bf16 = t.gpu.bf16;
  tc.channels_last = t.gpu.channels_last;
  tc.reseed_each_step = true;  // step k's noise from (seed, k): --resume is exact
  tc.seed = opt.seed;
  json extra = json::object();
  int64_t steps_before = 0;
  if (!t.init.empty()) {
    // Training further from saved weights: the net (and so the EMA, which
    // starts as a copy of it) begins there; Adam and its warmup begin afresh.
    if (!fs::exists(t.init)) throw Error("--init: no file " + t.init.string());
    const json before = train::read_checkpoint_info(t.init);
    const json mf = before.value("manifest", json::object());
    steps_before = mf.value("steps_total", mf.value("steps", before.value("step", int64_t(0))));
    extra = {{"initialized_from", t.init.filename().string()}, {"steps_before", steps_before}};
    if (!(t.resume && fs::exists(checkpoint))) {
      train::load_weights(*out.net, m.description, t.init);
      std::cout << "  starting from the weights of " << t.init.string() << " (" << steps_before
                << " steps of training before)\n";
    }
  }
  train::Trainer trainer(out.net.ptr(), m.description, tc, opt.device);
  // Batch b of epoch e is a function of (seed, e, b) only, so a resumed run sees the same data.
  data::BatchSampler batches(train_set, t.batch, opt.seed, opt.device, true);
  int64_t epoch = -1;
  Tensor order;
  auto result = trainer.run(
      [&](int64_t step) {
        const int64_t e = (step - 1) / batches.batches_per_epoch(),
                      b = (step - 1) % batches.batches_per_epoch();
        if (e != epoch) order = batches.order(epoch = e);  // reshuffled every epoch
        return t.loss(*out.model, batches.batch(order, b).images);
      },
      checkpoint, t.resume,
      [&](int64_t step, double) {
        if (t.preview && t.grid_every > 0 &&
            step % t.grid_every == 0) {  // samples from the EMA weights
          nn::UseEmaWeights ema(trainer.ema(), *out.net);
          out.net->eval();
          const auto x = t.preview(*out.model);
          image::save_grid(enlarge(x.clamp(-1, 1), 2),
                           ch.out("train_samples_step" + std::to_string(step) + ".png"), 8);
          out.net->train();
        }
      },
      "train U-Net");
  if (!t.init.empty()) extra["steps_total"] = steps_before + result.step;
  out.manifest = finish_training(trainer, *out.net, m.description, result, t.batch, ch, metrics,
                                 m.export_name, m.loss_label, extra);
  out.source = "trained here";
  return out;
}
// ANCHOR_END: load_or_train

void plot_class_fractions(const quality::SampleReport& r, const std::filesystem::path& stem) {
  const auto& names = dm::data::fashion_mnist_classes();
  dm::plot::Vec idx;
  for (size_t k = 0; k < r.class_fractions.size(); ++k) idx.push_back(double(k));
  const double top = *std::max_element(r.class_fractions.begin(), r.class_fractions.end());
  dm::plot::Figure fig(1, 1, 900, 380);
  fig.ax()
      .title("classes of " + std::to_string(r.samples) +
             " samples (by the classifier); 0.1 each in the data")
      .xlabel("class: " + names[0] + ", " + names[1] + ", …, " + names.back())
      .ylabel("fraction")
      .yrange(0, std::max(0.3, 1.15 * top))
      .linepoints(idx, r.class_fractions, "samples")
      .hline(0.1, "data", {"#777777", 1.5, 0.4, 1.0, true});
  fig.save(stem);
}

}  // namespace dm::app
