// steper serve: an OpenAI-compatible HTTP server over a local model folder.
#include <csignal>
#include <cstdio>
#include <thread>

#include "commands.h"
#include "interrupt.h"
#include "steper/serve.h"

namespace steper::cli {

void add_serve_command(CLI::App& app, const Global&) {
  auto model_dir = std::make_shared<std::string>();
  auto o = std::make_shared<serve::ServeOptions>();
  auto l = std::make_shared<lm::LocalOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve",
      "Serve a model folder over HTTP with OpenAI's API, as vLLM does: /v1/models, /v1/completions\n"
      "(prompts as text or token ids; echo and logprobs for log-likelihoods), /v1/chat/completions,\n"
      "streaming with \"stream\": true, vLLM's /tokenize, /detokenize and /tokenizer_info, /health and\n"
      "Prometheus /metrics. Concurrent requests with the same settings are decoded as one batch.\n"
      "lm-evaluation-harness: --model local-completions --model_args base_url=http://HOST:PORT/v1/completions\n"
      "Stop with Ctrl-C.");
  cmd->add_option("--model", *model_dir, "Model folder (config.json, model.safetensors, tokenizer)")->required();
  cmd->add_option("--host", o->host, "Address to listen on (0.0.0.0: every interface)");
  cmd->add_option("--port", o->port, "Port (0: any free one, printed at start)")->check(in_range(0, 65535));
  cmd->add_option("--served-model-name,--model-name", o->model_name,
                  "Name clients use (default: the folder's name; the --model path is accepted too, as vLLM names it)");
  cmd->add_flag("--reuse-port", o->reuse_port,
                "Let other servers listen on the same port (SO_REUSEPORT: the kernel splits connections between them).\n"
                "Without it a port in use is an error");
  auto no_log = std::make_shared<bool>(false);
  cmd->add_flag("--no-access-log", *no_log, "No line per request on stderr (id, path, status, tokens in and out, seconds)");
  cmd->add_option("--batch", o->max_batch, "Prompts decoded together at most")->check(positive());
  cmd->add_option("--max-tokens-limit", o->max_tokens_limit, "Largest max_tokens a request may ask")->check(positive());
  cmd->add_option("--max-connections,--threads", o->max_connections,
                  "Connections served at once, a thread each (slow clients hold only their own)")
      ->check(positive());
  cmd->add_option("--device", l->device, "cpu, cuda or cuda:N");
  cmd->add_option("--dtype", l->dtype, "float32, bfloat16 or float16");
  cmd->add_option("--chat-template", l->chat_template,
                  "Chat template for /v1/chat/completions: a Jinja file or a tokenizer_config.json\n"
                  "(default: the model folder's own, if it has one; else message contents are joined)");
  cmd->add_option("--prefix-cache-mb", l->prefix_cache_mb,
                  "Memory for the keys and values of recent prompts, reused by prompts that start the same\n"
                  "way (a conversation's next turn); 0: off")
      ->check(non_negative());
  cmd->callback([model_dir, o, l, no_log] {
    o->model_path = *model_dir;
    if (*no_log) o->access_log = nullptr;
    if (std::string w = lm::local_backend_warning(); !w.empty()) warn(w);
    l->batch_size = o->max_batch;
    auto model = lm::open_local(*model_dir, *l);
    serve::Server server(*model, *o);
    const int port = server.bind();
    std::printf("serving %s (%.2fM parameters, context %d) on http://%s:%d/v1\n", server.model_name().c_str(),
                static_cast<double>(model->parameters()) / 1e6, model->context(), o->host.c_str(), port);
    std::fflush(stdout);
    StopOnInterrupt interrupt;
    std::thread watcher([&] {
      while (!StopOnInterrupt::stop_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      server.stop();
    });
    server.run();
    const auto& s = server.stats();
    std::fprintf(stderr, "steper serve: stopped after %llu requests (%llu errors), %llu batches of %.1f prompts on average\n",
                 static_cast<unsigned long long>(s.requests.load()), static_cast<unsigned long long>(s.errors.load()),
                 static_cast<unsigned long long>(s.batches.load()),
                 static_cast<double>(s.batched_prompts.load()) / static_cast<double>(std::max<std::uint64_t>(1, s.batches.load())));
    if (!StopOnInterrupt::stop_requested()) {
      watcher.detach();
      throw RuntimeError("the server stopped unexpectedly");
    }
    watcher.join();
  });
}

}  // namespace steper::cli
