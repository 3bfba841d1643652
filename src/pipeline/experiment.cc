// The stages of an experiment, in order; each is a call into the part that
// does the work, wrapped in the StageBook so that reruns skip or resume it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "report.h"
#include "experiment.h"
#include "stage_book.h"
#include "steper/distill.h"
#include "steper/error.h"
#include "steper/eval.h"
#include "steper/io.h"
#include "steper/lm.h"
#include "steper/model.h"
#include "steper/pipeline.h"
#include "steper/reason.h"
#include "steper/retrieve.h"
#include "steper/text.h"
#include "steper/train.h"

namespace fs = std::filesystem;

namespace steper::pipeline {
namespace detail {


double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

json file_identity(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) throw InputError(path + ": cannot read (" + ec.message() + ")");
  const auto changed = fs::last_write_time(path, ec).time_since_epoch().count();
  return json{{"path", fs::absolute(path).string()}, {"bytes", size}, {"changed", changed}};
}

json model_inputs(const ModelSpec& m) {
  return json{{"dim", m.dim}, {"layers", m.layers}, {"heads", m.heads}, {"kv_heads", m.kv_heads}, {"ffn", m.ffn},
              {"steps", m.pretrain_steps}};
}

json given_model(const std::string& dir) {
  const std::string weights = fs::exists(dir + "/model.safetensors") ? dir + "/model.safetensors" : dir + "/model.safetensors.index.json";
  return json{{"config", file_identity(dir + "/config.json")}, {"weights", file_identity(weights)}};
}

json train_inputs(const TrainSpec& t) {
  return json{{"epochs", t.epochs}, {"batch", t.batch}, {"lr", t.lr}, {"warmup", t.warmup}};
}


void Experiment::data_stage() {
  if (!c_.corpus.empty()) {
    corpus_ = c_.corpus, train_ = c_.train, distill_ = c_.distill, dev_ = c_.dev, test_ = c_.test, gold_ = c_.gold_traces;
    reading_questions_ = c_.reading_questions, reading_gold_ = c_.reading_gold;
    json inputs{{"corpus", file_identity(corpus_)}, {"train", file_identity(train_)}, {"distill", file_identity(distill_)},
                {"dev", file_identity(dev_)}, {"test", file_identity(test_)}};
    if (!gold_.empty()) inputs["gold"] = file_identity(gold_);
    if (c_.reading.epochs > 0) inputs["reading"] = json{file_identity(reading_questions_), file_identity(reading_gold_)};
    book_.run("data", inputs, {}, {}, [] { return json::object(); });
    return;
  }
  corpus_ = path("world/corpus.jsonl"), train_ = path("world/train.jsonl"), distill_ = path("world/distill.jsonl");
  dev_ = path("world/dev.jsonl"), test_ = path("world/test.jsonl"), gold_ = path("world/gold_traces.jsonl");
  reading_questions_ = path("world/reading.jsonl"), reading_gold_ = path("world/reading_gold.jsonl");
  if (c_.copy_drills > 0) drills_ = path("world/drills.jsonl");
  json world_key{{"world_seed", c_.seed}, {"questions", c_.world_questions}};
  // Worlds written before reading questions existed lack their files.
  if (c_.reading.epochs > 0) world_key["reading"] = true;
  if (c_.world_entities > 0) world_key["entities"] = c_.world_entities;  // absent when 0: earlier runs keep their key
  if (c_.copy_drills > 0) world_key["drills"] = c_.copy_drills;
  json r = book_.run("data", world_key, {}, {"world"}, [&] {
    data::WorldOptions wo;
    wo.seed = c_.seed;
    wo.questions = c_.world_questions;
    wo.entities = c_.world_entities;
    wo.drills = c_.copy_drills;
    data::World world = data::generate_world(wo);
    data::write_world(world, path("world"));
    return json{{"passages", world.corpus.size()}, {"questions", world.questions.size()}};
  });
  say("world: " + std::to_string(r.value("passages", 0)) + " passages, " + std::to_string(r.value("questions", 0)) +
      " questions in " + path("world") + (book_.skipped("data") ? " (done before)" : ""));
}

void Experiment::index_stage() {
  book_.run("index", json::object(), {"data"}, {"index"}, [&] {
    retrieve::IndexOptions o;
    o.progress = [&](const retrieve::IndexProgress& p) {
      return progress("index", p.total_bytes ? static_cast<double>(p.bytes_read) / static_cast<double>(p.total_bytes) : -1,
                      std::to_string(p.documents) + " passages");
    };
    auto st = retrieve::build_index(corpus_, path("index"), o);
    if (!st.complete) stopped("index");
    say("index: " + std::to_string(st.documents) + " passages");
    return json{{"documents", st.documents}};
  });
}

void for_each_text(const std::string& corpus, const std::string& train, const std::string& drills,
                   const std::function<void(const std::string&)>& f) {
  {
    data::RecordReader<data::Passage> r(corpus, data::parse_passage);
    data::Passage p;
    while (r.next(p)) f(p.title.empty() ? p.text : p.title + ". " + p.text);
  }
  for (const auto& q : data::read_questions(train)) f(q.question);
  if (drills.empty()) return;
  data::RecordReader<data::Drill> r(drills, data::parse_drill);
  data::Drill d;
  while (r.next(d)) {
    std::vector<retrieve::Hit> hits;
    for (const auto& p : d.passages) hits.push_back({p.id, p.title, p.text, 0});
    f(reason::render_reasoning(reason::default_templates(), d.question.question, hits) + " " + d.target);
  }
}

void Experiment::tokenizer_stage() {
  // A given tokenizer (the config's, or a given teacher's) is this stage's
  // input, so that the stages after it see when it changes.
  const std::string given = !c_.tokenizer.empty() ? c_.tokenizer : c_.teacher.init;
  if (!given.empty()) {
    tokenizer_ = given;
    book_.run("tokenizer", json{{"given", file_identity(text::find_tokenizer_file(given))}}, {}, {}, [] { return json::object(); });
    return;
  }
  tokenizer_ = path("tokenizer");
  book_.run("tokenizer", json{{"vocab_size", c_.vocab_size}}, {"data"}, {"tokenizer"}, [&] {
    std::vector<std::string> texts;
    for_each_text(corpus_, train_, drills_, [&](const std::string& t) { texts.push_back(t); });
    // The gold chains teach the tokenizer the words of reasoning sentences.
    if (!gold_.empty()) {
      data::RecordReader<data::Trace> r(gold_, data::parse_trace);
      data::Trace t;
      while (r.next(t)) {
        for (const auto& s : t.steps) texts.push_back(s.output);
      }
    }
    texts.push_back(reason::render_reasoning(reason::default_templates(), "", {}));
    std::size_t next = 0;
    text::SentencePieceTrainOptions so;
    so.vocab_size = c_.vocab_size;
    text::train_sentencepiece([&](std::string& s) { return next < texts.size() ? (s = texts[next++], true) : false; },
                              path("tokenizer"), so);
    say("tokenizer: " + std::to_string(text::load_tokenizer(path("tokenizer"))->vocab_size()) + " pieces");
    return json::object();
  });
}






std::string Experiment::questions_stage(const std::string& split, const std::string& file, std::size_t limit) {
  const std::string stage = "questions-" + split, out = "questions/" + split + ".jsonl";
  book_.run(stage, json{{"limit", limit}}, {"data"}, {out}, [&] {
    fs::create_directories(path("questions"));
    auto qs = data::read_questions(file);
    if (limit > 0 && qs.size() > limit) qs.resize(limit);
    {
      io::JsonlWriter w(path(out), io::JsonlWriter::Mode::staged);
      for (const auto& q : qs) w.write(data::to_json(q));
      w.commit();
    }
    return json{{"questions", qs.size()}};
  });
  return path(out);
}

std::string Experiment::run_stage(const std::string& name, const std::string& model_dir, const std::string& questions,
                                  const std::vector<std::string>& after) {
  const std::string stage = "run-" + name, out = "runs/" + name + ".jsonl";
  book_.run(stage, json{{"k", c_.k}, {"max_steps", c_.max_steps}, {"max_passages", c_.max_passages}}, after, {out}, [&] {
    fs::create_directories(path("runs"));
    lm::LocalOptions lo;
    lo.batch_size = c_.in_flight;
    auto local = lm::open_local(model_dir, lo);
    lm::LocalModel& model = *local;
    auto retriever = retrieve::open_retriever(path("index"));
    reason::RunOptions ro;
    ro.in_flight = c_.in_flight;
    ro.on_start = [&](const reason::RunProgress& p) {
      if (p.skipped > 0) say(stage + ": resuming: " + std::to_string(p.skipped) + " of " + std::to_string(p.total) + " questions done");
    };
    ro.on_progress = [&](const reason::RunProgress& p) {
      char d[96];
      std::snprintf(d, sizeof d, "%llu/%llu questions  %.1f q/s  EM %.3f", static_cast<unsigned long long>(p.done),
                    static_cast<unsigned long long>(p.total), p.questions_per_second, p.em);
      return progress(stage, p.total ? static_cast<double>(p.done) / static_cast<double>(p.total) : -1, d);
    };
    const auto t0 = std::chrono::steady_clock::now();
    auto st = reason::run(strategy(), model, retriever.get(), questions, path(out), ro);
    if (!st.complete) stopped(stage);
    return json{{"seconds", seconds_since(t0)}};
  });
  return path(out);
}

bool Experiment::progress(const std::string& stage, double fraction, const std::string& detail) {
  std::lock_guard<std::mutex> lock(hooks_mutex_);
  if (!hooks_.progress) return true;
  auto it = std::find_if(running_.begin(), running_.end(), [&](const Running& r) { return r.stage == stage; });
  if (it == running_.end() || running_.size() == 1) return hooks_.progress(Event{stage, fraction, detail});
  it->fraction = fraction;
  it->detail = detail;
  // Named by all of them (so that a progress bar stays one bar), as far as
  // the one furthest behind, with each one's figures.
  Event e{"", 1.0, ""};
  for (const Running& r : running_) {
    e.stage += (e.stage.empty() ? "" : " + ") + r.stage;
    e.detail += (e.detail.empty() ? "" : " | ") + r.detail;
    e.fraction = std::min(e.fraction, r.fraction);
  }
  return hooks_.progress(e);
}

void Experiment::side_by_side(const std::vector<std::pair<std::string, std::function<void()>>>& jobs, int width) {
  if (width <= 1 || jobs.size() <= 1) {
    for (const auto& [stage, job] : jobs) job();
    return;
  }
  // One thread each whether a job has a partner or not, so that its result
  // does not depend on which jobs ran together (a resumed run pairs them
  // differently).
  model::CpuThreads one(1);
  std::mutex m;
  std::size_t next = 0;
  std::exception_ptr first;
  auto worker = [&] {
    for (;;) {
      std::size_t i;
      {
        std::lock_guard<std::mutex> lock(m);
        if (next == jobs.size() || first) return;
        i = next++;
      }
      {
        std::lock_guard<std::mutex> lock(hooks_mutex_);
        running_.push_back(Running{jobs[i].first, "", 0});
      }
      std::exception_ptr error;
      try {
        jobs[i].second();
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(hooks_mutex_);
        running_.erase(std::find_if(running_.begin(), running_.end(), [&](const Running& r) { return r.stage == jobs[i].first; }));
      }
      if (error) {
        std::lock_guard<std::mutex> lock(m);
        if (!first) first = error;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < width && static_cast<std::size_t>(t) < jobs.size(); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

ExperimentResult Experiment::run() {
  const auto t0 = std::chrono::steady_clock::now();
  fs::create_directories(path("report"));
  io::write_json_atomic(path("report/config.json"), to_json(c_));
  say("experiment '" + c_.name + "' (seed " + std::to_string(c_.seed) + ") in " + out_);
  data_stage();
  index_stage();
  tokenizer_stage();

  const bool reading = c_.reading.epochs > 0;
  const bool shared = c_.student.init == kStudentFromTeacher;
  const std::string teacher_pre = pretrain_stage("teacher", c_.teacher);
  const std::string student_pre = shared ? teacher_pre : pretrain_stage("student", c_.student);
  const std::string teacher_read = reading_stage("teacher", teacher_pre);
  teacher_start_stage_ = reading ? "train-read-teacher" : "pretrain-teacher";
  const std::string student_start = shared ? teacher_read : reading_stage("student", student_pre);
  const std::string teacher = teacher_sft_stage(teacher_read);
  const std::string teacher_stage = c_.teacher_sft.epochs > 0 ? "train-teacher" : teacher_start_stage_;
  const std::string student_stage = shared ? teacher_start_stage_ : reading ? "train-read-student" : "pretrain-student";
  if (shared) say("student: the teacher's checkpoint before its SFT (" + student_start + ")");

  // The teacher's traces over the distill split, cut three ways.
  const std::string distill_questions = questions_stage("distill", distill_, c_.distill_questions);
  const std::string traces = run_stage("teacher-distill", teacher, distill_questions, {teacher_stage, "questions-distill", "index"});
  struct Data {
    const char* mode;
    distill::Mode m;
  };
  for (const Data& d : {Data{"steper", distill::Mode::steper}, Data{"vanilla", distill::Mode::vanilla}, Data{"answer", distill::Mode::answer}}) {
    const std::string stage = std::string("samples-") + d.mode;
    json r = book_.run(stage, json{{"max_passages", c_.max_passages}, {"keep", c_.keep}}, {"run-teacher-distill"}, {std::string("samples/") + d.mode + ".jsonl"}, [&] {
      fs::create_directories(path("samples"));
      distill::StepwiseOptions so;
      so.mode = d.m;
      so.keep = c_.keep;
      so.max_passages = c_.max_passages;
      auto st = distill::build_stepwise(traces, distill_questions, corpus_, path(std::string("samples/") + d.mode + ".jsonl"), so);
      json counts = json::object();
      for (const auto& [s, n] : st.samples) counts[s] = n;
      return json{{"traces", st.traces}, {"kept", st.kept}, {"wrong", st.wrong}, {"samples", counts}};
    });
    say(stage + ": " + std::to_string(r.value("kept", 0)) + " of " + std::to_string(r.value("traces", 0)) +
        " teacher traces kept (" + c_.keep + "); samples " + r["samples"].dump());
    if (r.value("kept", 0) == 0) {
      throw RuntimeError("the teacher answered none of the distill questions correctly (" + traces +
                         "), so there is nothing to distil\nhint: train the teacher longer (teacher_sft.epochs, teacher.pretrain_steps), or keep more traces (keep: acc or all)");
    }
  }

  // The students, all from the same checkpoint, each for students.epochs
  // passes over its own samples, parallel_jobs of them at a time.
  const std::vector<std::tuple<std::string, std::string, distill::Weighting>> students{
      {"answer", "answer", distill::Weighting::none},
      {"vanilla", "vanilla", distill::Weighting::none},
      {"steper_uniform", "steper", distill::Weighting::uniform},
      {"steper_difficulty", "steper", distill::Weighting::difficulty},
      {"steper_floor", "steper", distill::Weighting::floor}};
  std::map<std::string, json> trained;
  std::vector<std::pair<std::string, std::function<void()>>> jobs;
  // The step-wise students first: they have about three times the samples,
  // and the short ones then fill in beside the last long one.
  for (const auto& [id, samples, w] : std::vector(students.rbegin(), students.rend())) {
    jobs.emplace_back("train-" + id, [&, id = id, samples = samples, w = w] {
      json r = distill_stage(id, "students/" + id, c_.students, path("samples/" + samples + ".jsonl"), w, student_start,
                             {"samples-" + samples, student_stage});
      std::lock_guard<std::mutex> lock(hooks_mutex_);
      trained[id] = std::move(r);
    });
  }
  side_by_side(jobs, c_.parallel_jobs);
  json training = json::object();
  for (const auto& [id, samples, w] : students) training[id] = trained.at(id);
  if (!teacher_training_.is_null()) training["teacher"] = teacher_training_;

  // Every model over dev and test.
  std::map<std::string, std::string> model_dirs{{"teacher", teacher}, {"student", student_start}};
  std::map<std::string, std::string> model_stage{{"teacher", teacher_stage}, {"student", student_stage}};
  for (const auto& [id, samples, w] : students) {
    model_dirs[id] = path("students/" + id);
    model_stage[id] = "train-" + id;
  }
  // Their runs over dev and test, side by side as the students.
  const std::vector<std::pair<std::string, std::string>> splits{{"dev", dev_}, {"test", test_}};
  std::map<std::string, std::string> split_questions;
  for (const auto& [split, file] : splits) {
    split_questions[split] = questions_stage(split, file, split == "dev" ? c_.dev_questions : c_.test_questions);
  }
  std::map<std::string, std::string> traces_of;  // run name -> its traces
  jobs.clear();
  for (const auto& [split, file] : splits) {
    for (const auto& m : methods()) {
      const std::string run = m.id + "-" + split;
      jobs.emplace_back("run-" + run, [&, run, split = split, id = m.id] {
        std::string t = run_stage(run, model_dirs.at(id), split_questions.at(split), {model_stage.at(id), "questions-" + split, "index"});
        std::lock_guard<std::mutex> lock(hooks_mutex_);
        traces_of[run] = std::move(t);
      });
    }
  }
  side_by_side(jobs, c_.parallel_jobs);
  Scores scores;
  Report::ViewerInputs test_runs{split_questions["test"], {}, corpus_};
  for (const auto& [split, file] : splits) {
    const auto questions = data::read_questions(split_questions[split]);
    for (const auto& m : methods()) {
      const std::string& traces_path = traces_of.at(m.id + "-" + split);
      scores.add(m.id, split, questions, traces_path);
      if (split == "test") test_runs.traces[m.id] = traces_path;
    }
  }

  Report report(c_, out_, training, scores, model_dirs);
  ExperimentResult result;
  result.metrics = report.metrics();
  result.table = report.table();
  result.report_dir = path("report");
  report.write(path("report"), test_runs);
  say("report: " + path("report") + " (" + std::to_string(static_cast<int>(seconds_since(t0))) + " s this run)");
  return result;
}

}  // namespace detail

ExperimentResult run_experiment(const ExperimentConfig& config, const std::string& out_dir, const Hooks& hooks) {
  detail::Experiment e(config, out_dir, hooks);
  return e.run();
}

}  // namespace steper::pipeline
