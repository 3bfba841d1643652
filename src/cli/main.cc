// steper: step-wise distillation of multi-step retrieval-augmented reasoning.
// Parses the command line and turns every error into one line and an exit
// code: 2 for a caller's mistake (bad flag, bad input), 1 for a failure of
// the environment, 130 for a job interrupted by Ctrl-C (143 by SIGTERM)
// after saving its work.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>

#include "commands.h"
#include "interrupt.h"
#include "steper/data.h"
#include "steper/error.h"
#include "steper/model.h"
#include "steper/train.h"

namespace steper::cli {

void warn(const std::string& message) { std::fprintf(stderr, "steper: warning: %s\n", message.c_str()); }

std::unique_ptr<train::DataParallel> join_data_parallel(const std::string& device) {
  const train::DistributedEnv env = train::distributed_env();
  if (env.world_size == 1) return nullptr;
  const torch::Device d = train::rank_device(device);
  const bool nccl = d.is_cuda() && train::DataParallel::nccl_available();
  std::fprintf(stderr, "data parallel: rank %d of %d on %s over %s, rendezvous at %s:%d\n", env.rank, env.world_size, d.str().c_str(),
               nccl ? "NCCL" : "Gloo", env.master_addr.c_str(), env.master_port);
  return std::make_unique<train::DataParallel>(env, 300, d);
}

TextReader::TextReader(const std::string& path, std::string field) : records_(path), field_(std::move(field)) {}

bool TextReader::next(std::string& text) {
  while (records_.next(scratch_)) {
    try {
      text = data::require_string(scratch_, field_.c_str());
    } catch (const FieldError& e) {
      throw InputError(records_.where() + ": " + e.what() + "\n  hint: --field names the text field");
    }
    if (text.empty()) continue;
    ++count_;
    return true;
  }
  return false;
}

double TextReader::fraction() const {
  return static_cast<double>(records_.bytes_read()) / static_cast<double>(std::max<std::uint64_t>(1, records_.total_bytes()));
}

namespace {

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// A validator on the option's value read as a number; text that is no
// number, or no finite one, passes, for CLI11's conversion or
// refuse_bad_numbers to refuse in their own words.
CLI::Validator numeric_check(std::string description, std::function<std::string(double)> check) {
  return CLI::Validator(
      [check](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str() || !std::isfinite(v)) return "";  // refuse_bad_numbers says "not a finite number"
        const std::string problem = check(v);
        return problem.empty() ? "" : problem + "; got " + s;
      },
      std::move(description));
}

}  // namespace

const CLI::Validator& positive() {
  static const CLI::Validator v = numeric_check("POSITIVE", [](double x) { return x > 0 ? "" : std::string("must be more than 0"); });
  return v;
}

const CLI::Validator& non_negative() {
  static const CLI::Validator v = numeric_check("NONNEGATIVE", [](double x) { return x >= 0 ? "" : std::string("must be 0 or more"); });
  return v;
}

CLI::Validator in_range(double lo, double hi) {
  return numeric_check("in [" + number_text(lo) + ", " + number_text(hi) + "]", [lo, hi](double x) {
    return x >= lo && x <= hi ? "" : "must be from " + number_text(lo) + " to " + number_text(hi);
  });
}

CLI::Validator over_and_at_most(double lo, double hi) {
  return numeric_check("in (" + number_text(lo) + ", " + number_text(hi) + "]", [lo, hi](double x) {
    return x > lo && x <= hi ? "" : "must be more than " + number_text(lo) + " and at most " + number_text(hi);
  });
}

// Every number on steper's command line is a count, a size, a rate or a
// seed: finite and not negative. One check on every numeric option, so that
// `--epochs -1` or `--lr nan` is refused (exit 2) instead of silently
// training the default steps or ending in a LibTorch backtrace. Options that
// need more (positive, a range) add their own check.
void refuse_bad_numbers(CLI::App& app) {
  // CLI11 2.1 reads 99999999999999999999 as the largest int64 without a word.
  // Signed options are checked against int64's range, unsigned against uint64's.
  auto in_range = [](bool is_unsigned) {
    return CLI::Validator(
        [is_unsigned](std::string& s) -> std::string {
          errno = 0;
          char* end = nullptr;
          if (is_unsigned) std::strtoull(s.c_str(), &end, 10);
          else std::strtoll(s.c_str(), &end, 10);
          if (end != s.c_str() && errno == ERANGE) return "'" + s + "' is too large";
          return "";
        },
        "", "IN_RANGE");
  };
  static const CLI::Validator signed_in_range = in_range(false), unsigned_in_range = in_range(true);
  static const CLI::Validator finite_non_negative(
      [](std::string& s) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(s.c_str(), &end);
        if (end == s.c_str()) return "";  // not a number at all: CLI11's conversion says so
        if (!std::isfinite(v)) return "'" + s + "' is not a finite number";
        if (v < 0) return "'" + s + "' is negative; it must be 0 or more";
        return "";
      },
      "", "FINITE");
  for (CLI::Option* o : app.get_options()) {
    const std::string type = o->get_type_name();
    const bool is_unsigned = type.rfind("UINT", 0) == 0, whole = is_unsigned || type.rfind("INT", 0) == 0;
    if (whole) o->check(is_unsigned ? unsigned_in_range : signed_in_range);
    if (whole || type.rfind("FLOAT", 0) == 0) o->check(finite_non_negative);
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) refuse_bad_numbers(*sub);
}

}  // namespace steper::cli

int main(int argc, char** argv) {
  using namespace steper::cli;
  steper::model::tune_allocator();
  CLI::App app{
      "steper distils the multi-step retrieval-augmented reasoning of a large teacher model into a small\n"
      "student (StepER: step-wise knowledge distillation with difficulty-aware training).\n\n"
      "Pipeline:  convert | world -> index -> search / recall -> run -> traces -> eval\n           traces -> stepwise -> train (student) -> run / serve\n           tokenizer train -> pretrain -> generate / serve\n(run `steper COMMAND --help` for each)",
      "steper"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", "steper 0.1.0");
  Global global;
  app.add_flag("-q,--quiet", global.quiet, "Print no progress output");
  app.add_option_function<double>(
         "--max-record-mb", [](double mb) { steper::data::set_max_record_bytes(static_cast<std::uint64_t>(mb * (1 << 20))); },
         "Longest JSON record (one JSONL line) read, in MiB (default 16); longer ones are refused with their line")
      ->envname("STEPER_MAX_RECORD_MB")
      ->check(positive());

  add_convert_command(app, global);
  add_index_command(app, global);
  add_search_command(app, global);
  add_recall_command(app, global);
  add_eval_command(app, global);
  add_world_command(app, global);
  add_tokenizer_command(app, global);
  add_pretrain_command(app, global);
  add_generate_command(app, global);
  add_run_command(app, global);
  add_serve_command(app, global);
  add_stepwise_command(app, global);
  add_train_command(app, global);
  add_demo_command(app, global);
  add_view_command(app, global);
  refuse_bad_numbers(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message; a bad command line is the caller's mistake (2).
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const Interrupted& e) {
    // 130 after Ctrl-C, 143 after SIGTERM: what a shell reports for a
    // process the signal ended, so supervisors read it the same way.
    std::fprintf(stderr, "steper: %s\n", e.what());
    const int signal = StopOnInterrupt::last_signal();
    return 128 + (signal ? signal : SIGINT);
  } catch (const steper::InputError& e) {
    std::fprintf(stderr, "steper: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "steper: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
