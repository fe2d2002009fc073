#include "ops/dlq/dlq_command.h"

#include <iostream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/log.h"
#include "sink/postgres/postgres_sink.h"
#include "state/dlq_store.h"

namespace tidemark::dlq {

namespace {

using nlohmann::ordered_json;

ordered_json toJson(const core::DeadLetter& d, bool whole) {
  ordered_json j{{"id", d.id},       {"sink", d.sink},         {"state", d.state},
                 {"offset", d.offset}, {"position", d.position}, {"table", d.table},
                 {"key", d.key},     {"error", d.error},       {"created_at", d.created_at}};
  if (whole) {
    j["topic"] = d.topic;
    j["event"] = ordered_json::parse(d.value, nullptr, false);
    if (j["event"].is_discarded()) j["event"] = d.value;
  }
  return j;
}

std::string shorten(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n - 3) + "...";
  return s;
}

const config::SinkConfig& sinkNamed(const config::PipelineConfig& cfg, const std::string& name) {
  for (const auto& s : cfg.sinks) {
    if (s.name == name) return s;
  }
  throw Error(ErrorClass::Config, fmt::format("--sink {}: no sink of that name", name),
              "name a sink of the configuration (sinks[].name)");
}

}  // namespace

int dlqCommand(const config::PipelineConfig& cfg, const Options& options) {
  if (options.sink) sinkNamed(cfg, *options.sink);
  auto store = state::openDeadLetters(cfg.state_dir);
  std::vector<core::DeadLetter> letters = store->list(options.sink.value_or(""), options.ids);
  for (int64_t id : options.ids) {
    if (std::none_of(letters.begin(), letters.end(), [&](const auto& d) { return d.id == id; })) {
      throw Error(ErrorClass::Config, fmt::format("--id {}: no such record{}", id,
                                                  options.sink ? " of sink " + *options.sink : std::string()),
                  "tidemark dlq list shows the records and their ids");
    }
  }
  if (options.action == "list" || options.action == "show") {
    const bool whole = options.action == "show";
    if (options.json || whole) {
      ordered_json out = ordered_json::array();
      for (const auto& d : letters) out.push_back(toJson(d, whole));
      std::cout << out.dump(whole ? 2 : -1, ' ', false, ordered_json::error_handler_t::replace) << "\n";
      return kExitOk;
    }
    if (letters.empty()) {
      std::cout << "the dead letter queue is empty\n";
      return kExitOk;
    }
    std::cout << fmt::format("{:>5}  {:<12} {:<10} {:>10}  {:<12} {:<28} {:<24} {}\n", "id", "sink", "state",
                             "offset", "position", "table", "key", "error");
    for (const auto& d : letters) {
      std::cout << fmt::format("{:>5}  {:<12} {:<10} {:>10}  {:<12} {:<28} {:<24} {}\n", d.id, shorten(d.sink, 12),
                               d.state, d.offset, d.position, shorten(d.table, 28), shorten(d.key, 24),
                               shorten(d.error, 160));
    }
    return kExitOk;
  }
  if (options.action == "discard") {
    if (options.ids.empty() && !options.sink) {
      throw Error(ErrorClass::Config, "dlq discard needs --id ID... or --sink NAME",
                  "name the records (--id), or the sink whose pending records to discard (--sink)");
    }
    int n = 0;
    for (const auto& d : letters) {
      if (d.state != "pending") continue;
      store->setState(d.id, "discarded", "");
      ++n;
    }
    std::cout << fmt::format("discarded {} record{}\n", n, n == 1 ? "" : "s");
    return kExitOk;
  }
  if (options.action != "retry") {
    throw Error(ErrorClass::Config, fmt::format("dlq {}: unknown action", options.action),
                "use one of: list, show, retry, discard");
  }
  bool rejected = false;
  for (const auto& sink : cfg.sinks) {
    std::vector<core::DeadLetter> pending;
    for (const auto& d : letters) {
      if (d.sink == sink.name && d.state == "pending") pending.push_back(d);
    }
    if (pending.empty()) continue;
    if (sink.kind != "postgres") {
      throw Error(ErrorClass::Config,
                  fmt::format("sink \"{}\" ({}) has records in the dead letter queue, but only postgres sinks can "
                              "apply them again",
                              sink.name, sink.kind),
                  "discard them with tidemark dlq discard");
    }
    sinks::PostgresSink writer(sink, cfg.dlq.max_records, nullptr, Logger("dlq").with("sink", sink.name));
    const auto result = writer.retryDeadLetters(pending);
    for (int64_t id : result.applied) {
      store->setState(id, "retried", "");
      std::cout << fmt::format("{}: applied\n", id);
    }
    for (const auto& [id, why] : result.superseded) {
      store->setState(id, "superseded", why);
      std::cout << fmt::format("{}: superseded, not applied: {}\n", id, why);
    }
    for (const auto& [id, why] : result.failed) {
      rejected = true;
      std::cout << fmt::format("{}: still rejected, left pending: {}\n", id, why);
    }
  }
  return rejected ? kExitRuntime : kExitOk;
}

}  // namespace tidemark::dlq
