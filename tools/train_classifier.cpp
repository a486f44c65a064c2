// train_classifier — trains the small Fashion-MNIST classifier whose feature
// space the image chapters measure sample quality in (dm/data/quality.hpp), and
// reports its test accuracy. The suite ships the result as
// data/checkpoints/fashion_classifier.pt; this program reproduces it:
//
//   build/bin/train_classifier --seed 0 --out runs/train_classifier
//   cp runs/train_classifier/fashion_classifier.pt data/checkpoints/
#include <cstdio>

#include "dm/app/cli.hpp"
#include "dm/data/fashion.hpp"
#include "dm/app/metrics_file.hpp"
#include "dm/data/quality.hpp"

int main(int argc, char** argv) {
  return dm::run_main([&] {
    dm::Chapter tool("train_classifier",
                     "Trains the Fashion-MNIST classifier used for Fréchet distances", 2);
    int64_t epochs = 4;
    tool.app().add_option("--epochs", epochs,
                          "training epochs (default 4; --quick: 1 on 5000 images)");
    const auto& opt = tool.parse(argc, argv);
    const int64_t limit = opt.quick ? 5000 : -1;
    auto train = dm::data::load_fashion_mnist(dm::data::Split::train, opt.data.string(), limit);
    auto test = dm::data::load_fashion_mnist(dm::data::Split::test, opt.data.string(),
                                             opt.quick ? 2000 : -1);
    tool.begin_work();
    std::printf("training on %lld images, testing on %lld\n", (long long)train.images.size(0),
                (long long)test.images.size(0));

    dm::quality::Classifier net{dm::quality::ClassifierConfig{}};
    dm::quality::ClassifierTraining t;
    t.epochs = opt.quick ? 1 : epochs;
    t.seed = opt.seed;
    dm::Timer timer;
    const double loss =
        dm::quality::train_classifier(net, train.images, train.labels, t, opt.device);
    const double seconds = timer.seconds();
    const double acc = dm::quality::accuracy(net, test.images, test.labels);
    std::printf("final training loss %.4f; test accuracy %.4f (%lld test images); %.0f s\n", loss,
                acc, (long long)test.images.size(0), seconds);

    const nlohmann::json manifest = {
        {"command", "build/bin/train_classifier --seed " + std::to_string(opt.seed) +
                        (opt.quick ? " --quick" : " --epochs " + std::to_string(epochs))},
        {"seed", opt.seed},
        {"device", dm::device_name(opt.device)},
        {"epochs", t.epochs},
        {"train_images", train.images.size(0)},
        {"wall_seconds", seconds},
        {"test_accuracy", acc},
        {"test_images", test.images.size(0)}};
    dm::quality::save_classifier(net, tool.out("fashion_classifier.pt"), manifest);
    dm::MetricsFile metrics(tool);
    metrics["classifier"] = manifest;
    metrics.write();
    std::printf("wrote %s\n", tool.out("fashion_classifier.pt").string().c_str());
  });
}
