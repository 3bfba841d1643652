// Each subcommand lives in its own cmd_*.cc and registers itself here.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "steper/data.h"
#include "steper/lm.h"
#include "steper/reason.h"
#include "steper/retrieve.h"

namespace steper::train {
class DataParallel;
}

namespace steper::cli {

// Flags every subcommand sees.
struct Global {
  bool quiet = false;  // no progress output
};

void add_convert_command(CLI::App& app, const Global& global);
void add_index_command(CLI::App& app, const Global& global);
void add_search_command(CLI::App& app, const Global& global);
void add_recall_command(CLI::App& app, const Global& global);
void add_eval_command(CLI::App& app, const Global& global);
void add_world_command(CLI::App& app, const Global& global);
void add_tokenizer_command(CLI::App& app, const Global& global);
void add_pretrain_command(CLI::App& app, const Global& global);
void add_generate_command(CLI::App& app, const Global& global);
void add_run_command(CLI::App& app, const Global& global);
void add_serve_command(CLI::App& app, const Global& global);
void add_stepwise_command(CLI::App& app, const Global& global);
void add_train_command(CLI::App& app, const Global& global);
void add_demo_command(CLI::App& app, const Global& global);
void add_view_command(CLI::App& app, const Global& global);

// How a command names its language model: a local folder or remote URLs.
struct ModelArgs {
  std::string model, model_name, device = "cpu", dtype = "float32", api_key_env = "OPENAI_API_KEY";
  int batch = 32, concurrency = 8, timeout_s = 120, retries = lm::RemoteOptions{}.retries;
  double max_backoff_s = lm::RemoteOptions{}.max_backoff_ms / 1000.0;
  int prefix_cache_mb = lm::LocalOptions{}.prefix_cache_mb;
  bool chat = false;
  std::string chat_template, system;
};
void add_model_options(CLI::App* cmd, ModelArgs& args);
std::unique_ptr<lm::LanguageModel> open_language_model(const ModelArgs& args);
// Plain text, or with --chat the model's chat template (a remote model's from
// --chat-template); throws InputError when --chat finds none.
reason::PromptFormat prompt_format(const ModelArgs& args, lm::LanguageModel& model);
// --k, --max-steps, --max-passages, --marker, --prompts.
void add_strategy_options(CLI::App* cmd, reason::StrategyOptions& options, std::string& prompts_dir);

// Thrown when the user stopped a job (Ctrl-C) after its work was saved;
// main prints the message and exits 130.
struct Interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The retrieval flags shared by search and recall (--k1, --b, --threads, ...).
void add_search_options(CLI::App* cmd, retrieve::SearchOptions& options);
// Opens an index spec, warning when a build of it was interrupted.
std::unique_ptr<retrieve::Retriever> open_index(const std::string& spec, const retrieve::SearchOptions& options);

// The texts of a JSONL file, one field of each record, pulled one at a time
// (tokenizer training and pretraining read them so).
class TextReader {
 public:
  TextReader(const std::string& path, std::string field);
  // The next non-empty text; false at the end. Throws InputError with
  // file:line when a record lacks the field.
  bool next(std::string& text);
  double fraction() const;  // of the file read
  std::uint64_t count() const { return count_; }

 private:
  data::JsonRecords records_;
  std::string field_;
  data::json scratch_;
  std::uint64_t count_ = 0;
};

// Joins the data-parallel group when WORLD_SIZE > 1 (torchrun's variables)
// for a rank on `device` (--device; cuda is cuda:LOCAL_RANK), over NCCL
// when it is a GPU and the build has NCCL, saying so on stderr; null for a
// single process.
std::unique_ptr<train::DataParallel> join_data_parallel(const std::string& device);

// Checks of numeric options whose messages a person reads ("--k: must be
// more than 0; got 0"), in place of CLI11's, which print DBL_MAX in full.
// The help keeps CLI11's names (POSITIVE, NONNEGATIVE, "in [lo, hi]").
const CLI::Validator& positive();
const CLI::Validator& non_negative();
CLI::Validator in_range(double lo, double hi);  // lo <= value <= hi
CLI::Validator over_and_at_most(double lo, double hi);  // lo < value <= hi

// Prints "steper: warning: ..." on stderr.
void warn(const std::string& message);

}  // namespace steper::cli
