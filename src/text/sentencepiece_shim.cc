// A C interface to libsentencepiece, built as its own module and loaded by
// sentencepiece_tokenizer.cc into a link-map namespace of its own
// (dlmopen(LM_ID_NEWLM)).
//
// Why: Debian's libsentencepiece carries a private copy of protobuf-lite
// (3.14) and exports its symbols; LibTorch loads the system's full protobuf
// (3.21). Linked into one program the two collide: protobuf's own calls bind
// to sentencepiece's copies (a crash in static initialisation), or
// sentencepiece's bind to the system's (a fatal version check).
// RTLD_DEEPBIND is not enough: it binds sentencepiece's std::cerr to an
// uninitialised copy. In its own namespace sentencepiece has its own C and
// C++ runtimes, so only plain C data crosses: memory the shim allocates, the
// shim frees (steper_spm_free_buffer).
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

namespace {

void set_error(char* err, std::size_t n, const std::string& message) {
  if (err && n) {
    std::strncpy(err, message.c_str(), n - 1);
    err[n - 1] = '\0';
  }
}

using NextFn = int (*)(void* ctx, const char** text, std::size_t* len);

class CallbackIterator final : public sentencepiece::SentenceIterator {
 public:
  CallbackIterator(NextFn next, void* ctx) : next_(next), ctx_(ctx) { Next(); }
  bool done() const override { return done_; }
  void Next() override {
    const char* text = nullptr;
    std::size_t len = 0;
    done_ = next_(ctx_, &text, &len) == 0;
    if (!done_) value_.assign(text, len);
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return {}; }

 private:
  NextFn next_;
  void* ctx_;
  std::string value_;
  bool done_ = false;
};

}  // namespace

extern "C" {

void* steper_spm_load(const char* path, char* err, std::size_t errlen) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  auto status = sp->Load(path);
  if (!status.ok()) {
    set_error(err, errlen, status.ToString());
    delete sp;
    return nullptr;
  }
  return sp;
}

void steper_spm_free(void* sp) { delete static_cast<sentencepiece::SentencePieceProcessor*>(sp); }

void steper_spm_info(void* handle, int* vocab, int* bos, int* eos) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  *vocab = sp->GetPieceSize();
  *bos = sp->bos_id();
  *eos = sp->eos_id();
}

void steper_spm_pad(void* handle, int* pad) { *pad = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->pad_id(); }

// A piece's text into a malloc'd buffer the caller frees with steper_spm_free_buffer.
void steper_spm_piece(void* handle, int id, char** text, std::size_t* len) {
  const std::string piece = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->IdToPiece(id);
  *len = piece.size();
  *text = static_cast<char*>(std::malloc(piece.size() + 1));
  std::memcpy(*text, piece.data(), piece.size());
}

void steper_spm_free_buffer(void* p) { std::free(p); }

// Writes ids into a malloc'd array the caller frees with steper_spm_free_buffer.
int steper_spm_encode(void* handle, const char* text, std::size_t len, int** ids, std::size_t* n, char* err,
                      std::size_t errlen) {
  std::vector<int> out;
  auto status = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Encode(std::string(text, len), &out);
  if (!status.ok()) {
    set_error(err, errlen, status.ToString());
    return 0;
  }
  *n = out.size();
  *ids = static_cast<int*>(std::malloc(std::max<std::size_t>(1, out.size()) * sizeof(int)));
  if (!out.empty()) std::memcpy(*ids, out.data(), out.size() * sizeof(int));
  return 1;
}

// Writes the text into a malloc'd buffer the caller frees with steper_spm_free_buffer.
int steper_spm_decode(void* handle, const int* ids, std::size_t n, char** text, std::size_t* len, char* err,
                      std::size_t errlen) {
  std::string out;
  auto status = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Decode(std::vector<int>(ids, ids + n), &out);
  if (!status.ok()) {
    set_error(err, errlen, status.ToString());
    return 0;
  }
  *len = out.size();
  *text = static_cast<char*>(std::malloc(out.size() + 1));
  std::memcpy(*text, out.data(), out.size());
  return 1;
}

int steper_spm_train(const char* args, NextFn next, void* ctx, char* err, std::size_t errlen) {
  CallbackIterator it(next, ctx);
  // The trainer logs its whole command line at INFO level before it reads
  // --minloglevel, and Debian's build exposes no other switch: stderr is
  // muted for the call. Failures still come back through the status.
  const int saved = ::dup(2), null = ::open("/dev/null", O_WRONLY);
  if (saved >= 0 && null >= 0) ::dup2(null, 2);
  auto status = sentencepiece::SentencePieceTrainer::Train(args, &it);
  if (saved >= 0 && null >= 0) ::dup2(saved, 2);
  if (saved >= 0) ::close(saved);
  if (null >= 0) ::close(null);
  if (!status.ok()) {
    set_error(err, errlen, status.ToString());
    return 0;
  }
  return 1;
}

}  // extern "C"
