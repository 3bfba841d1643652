// SentencePiece models (`tokenizer.model`), loaded and trained through
// Debian's libsentencepiece behind the shim of sentencepiece_shim.cc.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // dlmopen
#endif
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "steper/text.h"
#include "steper/io.h"
#include "text_chunks.h"

namespace steper::text {
namespace {

constexpr std::size_t kErrorBytes = 1024;

struct Shim {
  void* (*load)(const char*, char*, std::size_t);
  void (*free_model)(void*);
  void (*info)(void*, int*, int*, int*);
  int (*encode)(void*, const char*, std::size_t, int**, std::size_t*, char*, std::size_t);
  int (*decode)(void*, const int*, std::size_t, char**, std::size_t*, char*, std::size_t);
  int (*train)(const char*, int (*)(void*, const char**, std::size_t*), void*, char*, std::size_t);
  void (*free_buffer)(void*);
  void (*pad)(void*, int*);
  void (*piece)(void*, int, char**, std::size_t*);
};

// The shim's path: $STEPER_SENTENCEPIECE_SHIM, else beside the executable,
// else where this build put it.
std::string shim_path() {
  if (const char* env = std::getenv("STEPER_SENTENCEPIECE_SHIM")) return env;
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<std::size_t>(n));
    dir = dir.substr(0, dir.find_last_of('/'));
    for (const std::string& candidate : {dir + "/" STEPER_SHIM_NAME, dir + "/../lib/steper/" STEPER_SHIM_NAME}) {
      struct stat st {};
      if (::stat(candidate.c_str(), &st) == 0) return candidate;
    }
  }
  return STEPER_SHIM_BUILD_PATH;
}

const Shim& shim() {
  static Shim s;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string path = shim_path();
    // Its own namespace: see sentencepiece_shim.cc for why.
    void* h = ::dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) throw RuntimeError(std::string("cannot load the SentencePiece shim: ") + ::dlerror() +
                               "\n  hint: set STEPER_SENTENCEPIECE_SHIM to the path of " STEPER_SHIM_NAME);
    auto sym = [&](const char* name) {
      void* f = ::dlsym(h, name);
      if (!f) throw RuntimeError(path + ": lacks " + name);
      return f;
    };
    s.load = reinterpret_cast<decltype(s.load)>(sym("steper_spm_load"));
    s.free_model = reinterpret_cast<decltype(s.free_model)>(sym("steper_spm_free"));
    s.info = reinterpret_cast<decltype(s.info)>(sym("steper_spm_info"));
    s.encode = reinterpret_cast<decltype(s.encode)>(sym("steper_spm_encode"));
    s.decode = reinterpret_cast<decltype(s.decode)>(sym("steper_spm_decode"));
    s.train = reinterpret_cast<decltype(s.train)>(sym("steper_spm_train"));
    s.free_buffer = reinterpret_cast<decltype(s.free_buffer)>(sym("steper_spm_free_buffer"));
    s.pad = reinterpret_cast<decltype(s.pad)>(sym("steper_spm_pad"));
    s.piece = reinterpret_cast<decltype(s.piece)>(sym("steper_spm_piece"));
  });
  return s;
}

class SentencePieceTokenizer final : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::string& path) {
    char err[kErrorBytes] = "";
    handle_ = shim().load(path.c_str(), err, sizeof err);
    if (!handle_) throw InputError(path + ": not a SentencePiece model: " + err);
    shim().info(handle_, &vocab_, &bos_, &eos_);
    windows_ = words_encode_apart();
  }
  ~SentencePieceTokenizer() override { shim().free_model(handle_); }
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  // A long text a window at a time (text_chunks.h), cut at a space between
  // two letters and the space dropped: SentencePiece writes a word's
  // leading space as "▁" and its dummy prefix gives a window's first word
  // the same one. Only for models that pass words_encode_apart().
  std::vector<int> encode(const std::string& text) const override {
    std::vector<int> out;
    if (!windows_) {
      encode_window(text, out);
      return out;
    }
    for (std::size_t from = 0; from < text.size();) {
      const std::size_t end = window_end(text, from, true);
      encode_window(std::string_view(text).substr(from, end - from), out);
      from = end + 1;
    }
    return out;
  }
  std::string decode(const std::vector<int>& ids) const override {
    std::vector<int> valid;
    valid.reserve(ids.size());
    for (int id : ids) {
      if (id >= 0 && id < vocab_) valid.push_back(id);
    }
    char* text = nullptr;
    std::size_t n = 0;
    char err[kErrorBytes] = "";
    if (!shim().decode(handle_, valid.data(), valid.size(), &text, &n, err, sizeof err)) {
      throw RuntimeError(std::string("SentencePiece decode failed: ") + err);
    }
    std::string out(text, n);
    shim().free_buffer(text);
    return out;
  }
  void encode_window(std::string_view text, std::vector<int>& out) const {
    int* ids = nullptr;
    std::size_t n = 0;
    char err[kErrorBytes] = "";
    if (!shim().encode(handle_, text.data(), text.size(), &ids, &n, err, sizeof err)) {
      throw RuntimeError(std::string("SentencePiece encode failed: ") + err);
    }
    out.insert(out.end(), ids, ids + n);
    shim().free_buffer(ids);
  }

  // Whether words separated by one space encode the same apart as together:
  // true with a dummy prefix and pieces that never span a space (steper's
  // models, Llama-2's, T5's), false otherwise, and then texts go whole.
  bool words_encode_apart() const {
    for (const char* sentence : {"the cat sat on the mat", "New York in winter was cold", "Tokyo is a city"}) {
      std::vector<int> whole, apart;
      encode_window(sentence, whole);
      std::string_view rest = sentence;
      for (std::size_t space; (space = rest.find(' ')) != std::string_view::npos; rest.remove_prefix(space + 1)) {
        encode_window(rest.substr(0, space), apart);
      }
      encode_window(rest, apart);
      if (whole != apart) return false;
    }
    return true;
  }

  int vocab_size() const override { return vocab_; }
  int bos_id() const override { return bos_; }
  int eos_id() const override { return eos_; }
  bool add_bos() const override { return bos_ >= 0; }
  std::string kind() const override { return "sentencepiece"; }
  std::string token_text(int id) const override {
    if (id < 0 || id >= vocab_) return "";
    char* text = nullptr;
    std::size_t len = 0;
    shim().piece(handle_, id, &text, &len);
    std::string out(text, len);
    shim().free_buffer(text);
    return out;
  }
  int pad_id() const override {
    int pad = -1;
    shim().pad(handle_, &pad);
    return pad;
  }

 private:
  void* handle_ = nullptr;
  int vocab_ = 0, bos_ = -1, eos_ = -1;
  bool windows_ = false;
};

struct TrainFeed {
  const std::function<bool(std::string&)>* next;
  std::string current;
  std::exception_ptr error;  // an exception must not cross the C boundary
};

int feed(void* ctx, const char** text, std::size_t* len) {
  auto* f = static_cast<TrainFeed*>(ctx);
  if (f->error) return 0;
  try {
    if (!(*f->next)(f->current)) return 0;
  } catch (...) {
    f->error = std::current_exception();
    return 0;
  }
  *text = f->current.data();
  *len = f->current.size();
  return 1;
}

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_tokenizer(const std::string& model_file) {
  return std::make_unique<SentencePieceTokenizer>(model_file);
}

void train_sentencepiece(const std::function<bool(std::string&)>& next, const std::string& out_dir,
                         const SentencePieceTrainOptions& o) {
  if (o.vocab_size < 16) throw InputError("vocabulary size must be at least 16, got " + std::to_string(o.vocab_size));
  if (o.model_type != "bpe" && o.model_type != "unigram") {
    throw InputError("model type must be bpe or unigram, got '" + o.model_type + "'");
  }
  io::make_directories(out_dir);
  std::string args = "--model_prefix=" + out_dir + "/tokenizer --vocab_size=" + std::to_string(o.vocab_size) +
                     " --model_type=" + o.model_type + " --character_coverage=" + std::to_string(o.character_coverage) +
                     " --input_sentence_size=" + std::to_string(o.max_sentences) + " --shuffle_input_sentence=true" +
                     " --num_threads=" + std::to_string(o.threads) +
                     " --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=3 --byte_fallback=true --split_digits=true" +
                     " --max_sentence_length=16384 --minloglevel=2" +
                     // a soft limit: a small corpus yields a smaller vocabulary instead of failing
                     " --hard_vocab_limit=false";
  TrainFeed f{&next, {}, nullptr};
  char err[kErrorBytes] = "";
  const int ok = shim().train(args.c_str(), feed, &f, err, sizeof err);
  if (f.error) std::rethrow_exception(f.error);
  if (!ok) {
    const std::string m = err;
    std::string hint;
    if (m.find("smaller than required") != std::string::npos) {
      hint = "\n  hint: raise the vocabulary size: byte fallback takes 256 pieces, plus every character seen";
    } else if (m.find("too high") != std::string::npos) {
      hint = "\n  hint: lower the vocabulary size, or train on more text";
    }
    throw InputError("SentencePiece training failed: " + m + hint);
  }
  // The trainer also writes tokenizer.vocab, a readable listing; keep it.
}

}  // namespace steper::text
