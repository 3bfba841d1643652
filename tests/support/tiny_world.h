// A complete small setting for tests that need every part at once: a
// synthetic world, its BM25 index, a SentencePiece tokenizer and a tiny
// Llama model that the test trains itself on the world's gold chains laid
// out as the reasoning prompt shows them (weak, but it writes sentences).
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <string>

#include "steper/data.h"
#include "steper/train.h"
#include "steper/reason.h"
#include "steper/retrieve.h"
#include "steper/text.h"
#include "test_util.h"

namespace steper::testing {

struct TinyWorld {
  std::string dir, corpus, index, tokenizer, model;
  std::string dev, train;  // questions files
};

inline TinyWorld tiny_world_paths(const std::string& dir) {
  TinyWorld w;
  w.dir = dir;
  w.corpus = dir + "/world/corpus.jsonl";
  w.index = dir + "/index";
  w.tokenizer = dir + "/tok";
  w.model = dir + "/model";
  w.dev = dir + "/world/dev.jsonl";
  w.train = dir + "/world/train.jsonl";
  return w;
}

// Builds the setting under `dir`.
inline TinyWorld make_tiny_world(const std::string& dir, int train_steps = 150, int dim = 48, int layers = 2) {
  TinyWorld w = tiny_world_paths(dir);
  data::WorldOptions wo;
  wo.seed = 3;
  wo.questions = 120;
  data::World world = data::generate_world(wo);
  data::write_world(world, dir + "/world");
  retrieve::build_index(w.corpus, w.index);
  auto retriever = retrieve::open_retriever(w.index);

  // Training texts: each train question's prompt (passages of a replay of
  // its gold chain) followed by the chain, and the corpus.
  const reason::Templates templates = reason::default_templates();
  std::vector<std::string> texts;
  for (const auto& p : world.corpus) texts.push_back(p.text);
  for (const auto& q : world.questions) {
    if (q.split != "train") continue;
    data::Trace t = reason::replay(q.gold, *retriever, 4);
    std::vector<retrieve::Hit> passages;
    std::vector<std::string> chain;
    for (const auto& s : t.steps) {
      for (const auto& h : retriever->search(s.query, 4)) passages.push_back(h);
      chain.push_back(s.output);
    }
    if (passages.size() > 8) passages.resize(8);
    texts.push_back(reason::render_reasoning(templates, q.question.question, passages) + reason::render_chain(chain) + "\n");
  }
  std::size_t next = 0;
  text::SentencePieceTrainOptions so;
  so.vocab_size = 400;
  text::train_sentencepiece([&](std::string& s) { return next < texts.size() ? (s = texts[next++], true) : false; }, w.tokenizer, so);
  auto tok = text::load_tokenizer(w.tokenizer);
  train::PretrainOptions po;
  model::ModelConfig& c = po.model;
  c.hidden_size = dim;
  c.intermediate_size = dim * 8 / 3;
  c.num_hidden_layers = layers;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 1024;
  po.seq_len = 128;
  po.train.steps = train_steps;
  po.train.batch_size = 8;
  po.train.lr = 3e-3;
  po.train.warmup_steps = 10;
  po.train.save_every = 0;
  po.run_key = "tiny";
  const auto stream = train::pack_texts(*tok, [&](const auto& f) {
    for (const auto& t : texts) f(t);
  });
  train::pretrain(stream, text::find_tokenizer_file(w.tokenizer), w.model, po, nullptr, nullptr);
  return w;
}

#ifdef STEPER_TEST_CACHE
// The setting every test process shares: built once under the build tree
// (CTest runs each test in its own process, some in parallel, so a file
// lock makes the first build it and the others wait).
inline const TinyWorld& shared_tiny_world() {
  static const TinyWorld w = [] {
    const std::string dir = std::string(STEPER_TEST_CACHE) + "/tiny_world_v1";
    std::filesystem::create_directories(STEPER_TEST_CACHE);
    struct Lock {  // released even when the build throws
      int fd;
      explicit Lock(const std::string& path) : fd(::open(path.c_str(), O_CREAT | O_RDWR, 0644)) {
        if (fd < 0 || ::flock(fd, LOCK_EX) != 0) std::abort();
      }
      ~Lock() { ::close(fd); }
    } lock(dir + ".lock");
    if (!std::filesystem::exists(dir + "/done")) {
      std::filesystem::remove_all(dir);
      std::filesystem::create_directories(dir);
      make_tiny_world(dir);
      write_file(dir + "/done", "");
    }
    return tiny_world_paths(dir);
  }();
  return w;
}
#endif

}  // namespace steper::testing
