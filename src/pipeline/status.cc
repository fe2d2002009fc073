#include "pipeline/status.h"

#include <unistd.h>

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/error.h"

namespace tidemark::pipeline {

std::string_view stateName(PipelineState state) {
  switch (state) {
    case PipelineState::Starting: return "starting";
    case PipelineState::Running: return "running";
    case PipelineState::Paused: return "paused";
    case PipelineState::Retrying: return "retrying";
    case PipelineState::Stalled: return "stalled";
    case PipelineState::Stopped: return "stopped";
    case PipelineState::Failed: return "failed";
  }
  return "unknown";
}

namespace {

using Json = nlohmann::ordered_json;

Json timeOrNull(const std::optional<int64_t>& us) {
  return us ? Json(isoTime(*us)) : Json(nullptr);
}

// When the latest observed heartbeat or commit became durable in each sink: the time of the
// sink's first save past its transaction, none while the sink is behind it.
std::vector<std::pair<std::string, std::optional<int64_t>>> deliveredAt(const StatusInput& in) {
  const pg::Freshness& f = in.session.freshness;
  std::vector<std::pair<std::string, std::optional<int64_t>>> out;
  for (const SinkStatus& s : in.sinks) {
    std::optional<int64_t> at;
    if (f.delivered_offset && f.delivered_at_us) {
      for (const auto& [cursor, saved_at] : s.worker.saves) {
        if (cursor >= *f.delivered_offset) {
          at = std::max(saved_at, *f.delivered_at_us);
          break;
        }
      }
    }
    out.emplace_back(s.name, at);
  }
  return out;
}

Json lsnOrNull(const std::optional<Lsn>& lsn) { return lsn ? Json(lsn->str()) : Json(nullptr); }

template <class T>
Json orNull(const std::optional<T>& v) {
  return v ? Json(*v) : Json(nullptr);
}

}  // namespace

std::string renderStatus(const config::PipelineConfig& cfg, const StatusInput& in) {
  using json = Json;
  const pg::Freshness& f = in.session.freshness;
  json j;
  j["pipeline"] = cfg.name;
  j["state"] = stateName(in.state);
  j["reason"] = in.reason.empty() ? json(nullptr) : json(in.reason);
  j["updated_at"] = isoTime(in.now_us);
  j["pid"] = orNull(in.pid);

  json hb;
  hb["mode"] = cfg.heartbeat.mode;
  hb["interval_ms"] = cfg.heartbeat.interval.count();
  hb["last_written_at"] = timeOrNull(in.monitor.last_written_us);
  hb["last_observed_at"] = timeOrNull(f.observed_at_us);
  hb["last_observed_written_at"] = timeOrNull(f.observed_written_us);
  hb["age_ms"] = f.observed_written_us ? json((in.now_us - *f.observed_written_us) / 1000) : json(nullptr);
  hb["e2e_lag_ms"] = f.observed_written_us && f.observed_at_us
                         ? json((*f.observed_at_us - *f.observed_written_us) / 1000)
                         : json(nullptr);
  hb["problem"] = in.monitor.problem.empty() ? json(nullptr) : json(in.monitor.problem);
  json sinks = json::object();
  for (const auto& [name, at] : deliveredAt(in)) {
    json one;
    one["delivered_at"] = timeOrNull(at);
    one["delivered_lag_ms"] = at && f.delivered_written_us ? json((*at - *f.delivered_written_us) / 1000) : json(nullptr);
    sinks[name] = one;
  }
  hb["sinks"] = sinks;
  j["heartbeat"] = hb;

  // Each sink's own place in the change log.
  json sink_docs = json::object();
  for (const SinkStatus& s : in.sinks) {
    const SinkWorker::Status& w = s.worker;
    const uint64_t behind = s.log_end - std::min(s.log_end, w.durable_cursor);
    json one;
    one["kind"] = s.kind;
    one["state"] = w.state;
    one["position"] = w.durable_cursor;
    one["read"] = w.read_cursor;
    one["lag_records"] = behind;
    one["lag_seconds"] = behind == 0 || w.caught_up_at_us == 0
                             ? (behind == 0 ? json(0) : json(nullptr))
                             : json(std::max<int64_t>(0, in.now_us - w.caught_up_at_us) / 1000000);
    one["last_error"] = w.error.empty() ? json(nullptr) : json(w.error);
    one["attempt"] = w.attempt;
    one["gives_up_at"] = w.state == "retrying" ? json(isoTime(w.gives_up_at_us)) : json(nullptr);
    one["dead_letters"] = s.dead_letters;
    sink_docs[s.name] = one;
  }
  j["sinks"] = sink_docs;
  if (in.log) {
    const LogFigures& l = *in.log;
    j["log"] = {{"kind", cfg.buffer.kind},
                {"size_bytes", l.size_bytes},
                {"max_bytes", l.max_bytes},
                {"start_offset", l.start_offset},
                {"end_offset", l.end_offset},
                {"oldest_unconsumed_offset", l.oldest_unconsumed},
                {"held_by", l.held_by.empty() ? json(nullptr) : json(l.held_by)}};
  } else {
    j["log"] = nullptr;
  }

  json slot;
  slot["name"] = cfg.source.slot;
  const std::optional<pg::SlotFigures>& sf = in.monitor.slot;
  slot["confirmed_flush_lsn"] = sf ? lsnOrNull(sf->confirmed_flush_lsn) : json(nullptr);
  slot["restart_lsn"] = sf ? lsnOrNull(sf->restart_lsn) : json(nullptr);
  slot["retained_wal_bytes"] = sf ? orNull(sf->retained_wal_bytes) : json(nullptr);
  slot["wal_status"] = sf ? orNull(sf->wal_status) : json(nullptr);
  slot["safe_wal_size"] = sf ? orNull(sf->safe_wal_size) : json(nullptr);
  slot["active"] = sf ? json(sf->active) : json(nullptr);
  slot["checked_at"] = sf ? json(isoTime(sf->checked_at_us)) : json(nullptr);
  j["slot"] = slot;

  auto lsnText = [](Lsn l) { return l.valid() ? json(l.str()) : json(nullptr); };
  j["positions"] = {{"received_lsn", lsnText(in.session.received)},
                    {"durable_lsn", lsnText(in.session.durable)},
                    {"acknowledged_lsn", lsnText(in.session.acknowledged)},
                    {"rebuilds", in.session.position_rebuilds}};
  j["events"] = {{"delivered", in.session.events_delivered}, {"bytes", in.session.bytes_delivered},
                 {"pending_bytes", in.session.pending_bytes}, {"skipped", in.session.changes_skipped},
                 {"skipped_tables", in.session.skipped_tables}};
  if (const auto& snap = in.session.snapshot) {
    // Rows read, and against the planner's estimates the rate and what is left.
    const pg::SnapshotProgress::Totals totals = snap->totals();
    const uint64_t rows = totals.rows;
    const uint64_t estimated = totals.estimated.value_or(0);
    const bool all_estimated = totals.estimated.has_value();
    json tables = json::object();
    for (const auto& t : snap->tables) {
      tables[t.name] = {{"rows", t.rows}, {"estimated_rows", orNull(t.estimated)}, {"done", t.done}};
    }
    const int64_t until = snap->done ? snap->ended_us : in.now_us;
    const double seconds = static_cast<double>(std::max<int64_t>(until - snap->started_us, 1)) * 1e-6;
    const double rate = static_cast<double>(rows) / seconds;
    json eta = nullptr;
    if (snap->done) {
      eta = 0;
    } else if (all_estimated && rate > 0) {
      eta = static_cast<int64_t>(static_cast<double>(estimated - std::min(estimated, rows)) / rate);
    }
    j["snapshot"] = {{"state", snap->done ? "done" : "reading"},
                     {"reason", snap->reason},
                     {"started_at", isoTime(snap->started_us)},
                     {"ended_at", snap->done ? json(isoTime(snap->ended_us)) : json(nullptr)},
                     {"rows", rows},
                     {"estimated_rows", all_estimated ? json(estimated) : json(nullptr)},
                     {"rows_per_second", static_cast<int64_t>(rate)},
                     {"eta_seconds", eta},
                     {"tables", tables}};
  } else {
    j["snapshot"] = nullptr;
  }
  if (const auto& inc = in.session.incremental) {
    json tables = json::array();
    for (const auto& t : inc->tables) {
      tables.push_back({{"table", t.schema + "." + t.table}, {"rows", t.rows}, {"filter", orNull(t.filter)}});
    }
    j["incremental_snapshot"] = {{"id", inc->id},
                                 {"state", inc->paused ? "paused" : "reading"},
                                 {"rows", in.session.incremental_rows},
                                 {"tables", tables}};
  } else if (in.session.incremental_done) {
    j["incremental_snapshot"] = {{"id", *in.session.incremental_done},
                                 {"state", "done"},
                                 {"rows", in.session.incremental_rows},
                                 {"tables", json::array()}};
  } else {
    j["incremental_snapshot"] = nullptr;
  }
  j["signals"] = {{"taken", in.session.signals},
                  {"refused", in.session.signals_failed},
                  {"last_error", orNull(in.session.last_signal_error)}};
  const Progress& p = in.progress;
  j["progress"] = {{"backlog_bytes", orNull(p.backlog_bytes)},
                   {"bytes_per_second", p.bytes_per_second ? json(static_cast<int64_t>(*p.bytes_per_second)) : json(nullptr)},
                   {"events_per_second", p.events_per_second ? json(static_cast<int64_t>(*p.events_per_second)) : json(nullptr)},
                   {"eta_seconds", orNull(p.eta_seconds)}};
  j["retries"] = in.retries;
  if (in.retry) {
    j["retry"] = {{"last_error", in.retry->last_error},
                  {"attempt", in.retry->attempt},
                  {"since", isoTime(in.retry->since_us)},
                  {"gives_up_at", isoTime(in.retry->gives_up_at_us)}};
  } else {
    j["retry"] = nullptr;
  }
  return j.dump();
}

namespace {

// Prometheus label values escape backslash, quote and newline.
std::string labelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class MetricsWriter {
 public:
  explicit MetricsWriter(std::string pipeline) : pipeline_(labelValue(pipeline)) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(std::string_view name, double value, std::string_view extra_labels = {}) {
    out_ += fmt::format("{}{{pipeline=\"{}\"{}}} {}\n", name, pipeline_,
                        extra_labels.empty() ? "" : fmt::format(",{}", extra_labels), value);
  }
  template <class T>
  void optional(std::string_view name, const std::optional<T>& v, double scale = 1.0,
                std::string_view extra_labels = {}) {
    if (v) sample(name, static_cast<double>(*v) * scale, extra_labels);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string pipeline_;
  std::string out_;
};

}  // namespace

std::string renderMetrics(const config::PipelineConfig& cfg, const StatusInput& in) {
  MetricsWriter m(cfg.name);
  const pg::Freshness& f = in.session.freshness;
  m.family("tidemark_state", "gauge", "1 for the pipeline's current state, 0 for the others.");
  for (PipelineState st : {PipelineState::Starting, PipelineState::Running, PipelineState::Paused, PipelineState::Retrying,
                           PipelineState::Stalled, PipelineState::Stopped, PipelineState::Failed}) {
    m.sample("tidemark_state", st == in.state ? 1 : 0, fmt::format("state=\"{}\"", stateName(st)));
  }
  m.family("tidemark_events_total", "counter", "Events appended to the change log by this process.");
  m.sample("tidemark_events_total", static_cast<double>(in.session.events_delivered));
  m.family("tidemark_changes_skipped_total", "counter",
           "Changes of published tables that are not captured (not in source.tables), skipped by "
           "this process.");
  m.sample("tidemark_changes_skipped_total", static_cast<double>(in.session.changes_skipped));
  {
    static const std::vector<pg::SnapshotProgress::Table> kNone;
    const auto& tables = in.session.snapshot ? in.session.snapshot->tables : kNone;
    m.family("tidemark_snapshot_rows_total", "counter", "Rows the initial snapshot of this process read, per table.");
    for (const auto& t : tables) {
      m.sample("tidemark_snapshot_rows_total", static_cast<double>(t.rows), fmt::format("table=\"{}\"", labelValue(t.name)));
    }
    m.family("tidemark_snapshot_estimated_rows", "gauge",
             "The planner's estimate of each snapshotted table's rows (pg_class.reltuples), when it has one.");
    for (const auto& t : tables) {
      m.optional("tidemark_snapshot_estimated_rows", t.estimated, 1.0, fmt::format("table=\"{}\"", labelValue(t.name)));
    }
  }
  m.family("tidemark_incremental_snapshot_rows_total", "counter",
           "Rows incremental snapshots wrote as read events in this process.");
  m.sample("tidemark_incremental_snapshot_rows_total", static_cast<double>(in.session.incremental_rows));
  m.family("tidemark_signals_refused_total", "counter",
           "Signals (signal table rows, tidemark snapshot files) refused as malformed or unknown in this process.");
  m.sample("tidemark_signals_refused_total", static_cast<double>(in.session.signals_failed));
  m.family("tidemark_position_rebuilds_total", "counter",
           "Times a lost source position was replaced by a new one and a full snapshot "
           "(source.snapshot.mode when_needed), over the pipeline's life.");
  m.sample("tidemark_position_rebuilds_total", static_cast<double>(in.session.position_rebuilds));
  m.family("tidemark_bytes_total", "counter", "Bytes of event values appended to the change log by this process.");
  m.sample("tidemark_bytes_total", static_cast<double>(in.session.bytes_delivered));
  m.family("tidemark_buffer_pending_bytes", "gauge", "Bytes appended to the change log and not yet durable.");
  m.sample("tidemark_buffer_pending_bytes", static_cast<double>(in.session.pending_bytes));
  m.family("tidemark_retries_total", "counter", "Reconnects after retriable errors and stalls.");
  m.sample("tidemark_retries_total", static_cast<double>(in.retries));
  m.family("tidemark_retry_window_remaining_seconds", "gauge",
           "While retrying: the time left before run gives up (retry.window).");
  if (in.retry) {
    m.sample("tidemark_retry_window_remaining_seconds",
             static_cast<double>(std::max<int64_t>(0, in.retry->gives_up_at_us - in.now_us)) * 1e-6);
  }
  m.family("tidemark_position_lsn", "gauge",
           "Positions as 64-bit LSN values: received from the server, durable in the change log, "
           "acknowledged to the slot.");
  m.sample("tidemark_position_lsn", static_cast<double>(in.session.received.value()), "kind=\"received\"");
  m.sample("tidemark_position_lsn", static_cast<double>(in.session.durable.value()), "kind=\"durable\"");
  m.sample("tidemark_position_lsn", static_cast<double>(in.session.acknowledged.value()), "kind=\"acknowledged\"");
  const std::optional<pg::SlotFigures>& sf = in.monitor.slot;
  // Each family's samples follow its TYPE line, as the exposition format requires.
  m.family("tidemark_slot_retained_wal_bytes", "gauge", "WAL the slot holds back (current WAL position minus restart_lsn).");
  if (sf) m.optional("tidemark_slot_retained_wal_bytes", sf->retained_wal_bytes);
  m.family("tidemark_slot_lag_bytes", "gauge", "Current WAL position minus the slot's confirmed_flush_lsn.");
  if (sf) m.optional("tidemark_slot_lag_bytes", sf->lag_bytes);
  m.family("tidemark_slot_safe_wal_size_bytes", "gauge", "WAL that can still be written before the slot is in danger (max_slot_wal_keep_size).");
  if (sf) m.optional("tidemark_slot_safe_wal_size_bytes", sf->safe_wal_size);
  m.family("tidemark_slot_active", "gauge", "1 while a process streams from the slot.");
  if (sf) m.sample("tidemark_slot_active", sf->active ? 1 : 0);
  m.family("tidemark_heartbeat_age_seconds", "gauge",
           "Now minus the source time of the freshest heartbeat or commit seen (pt-heartbeat's lag).");
  m.optional("tidemark_heartbeat_age_seconds",
             f.observed_written_us ? std::optional<int64_t>(in.now_us - *f.observed_written_us) : std::nullopt, 1e-6);
  m.family("tidemark_heartbeat_e2e_lag_seconds", "gauge", "How long the latest heartbeat took from the source to tidemark.");
  m.optional("tidemark_heartbeat_e2e_lag_seconds",
             f.observed_written_us && f.observed_at_us ? std::optional<int64_t>(*f.observed_at_us - *f.observed_written_us)
                                                       : std::nullopt,
             1e-6);
  m.family("tidemark_sink_delivered_lag_seconds", "gauge", "From the source time of the latest heartbeat or commit to its being durable in the sink.");
  for (const auto& [name, at] : deliveredAt(in)) {
    if (!at || !f.delivered_written_us) continue;
    m.sample("tidemark_sink_delivered_lag_seconds", static_cast<double>(*at - *f.delivered_written_us) * 1e-6,
             fmt::format("sink=\"{}\"", labelValue(name)));
  }
  m.family("tidemark_sink_position", "gauge", "The change-log offset below which everything is durable in the sink.");
  for (const SinkStatus& s : in.sinks) {
    m.sample("tidemark_sink_position", static_cast<double>(s.worker.durable_cursor),
             fmt::format("sink=\"{}\"", labelValue(s.name)));
  }
  m.family("tidemark_sink_lag_records", "gauge", "Change-log records not yet durable in the sink.");
  for (const SinkStatus& s : in.sinks) {
    m.sample("tidemark_sink_lag_records",
             static_cast<double>(s.log_end - std::min(s.log_end, s.worker.durable_cursor)),
             fmt::format("sink=\"{}\"", labelValue(s.name)));
  }
  m.family("tidemark_sink_up", "gauge", "1 while the sink delivers, 0 while it retries or has given up.");
  for (const SinkStatus& s : in.sinks) {
    m.sample("tidemark_sink_up", s.worker.state == "running" ? 1 : 0, fmt::format("sink=\"{}\"", labelValue(s.name)));
  }
  m.family("tidemark_sink_dead_letters", "gauge", "Changes the sink set aside in the dead letter queue, still pending.");
  for (const SinkStatus& s : in.sinks) {
    m.sample("tidemark_sink_dead_letters", static_cast<double>(s.dead_letters),
             fmt::format("sink=\"{}\"", labelValue(s.name)));
  }
  m.family("tidemark_log_size_bytes", "gauge", "Bytes the change log holds on disk.");
  if (in.log) m.sample("tidemark_log_size_bytes", static_cast<double>(in.log->size_bytes));
  m.family("tidemark_log_max_bytes", "gauge", "buffer.max_bytes: at this size reading from the source pauses.");
  if (in.log) m.sample("tidemark_log_max_bytes", static_cast<double>(in.log->max_bytes));
  m.family("tidemark_log_end_offset", "gauge", "The offset the next record appended to the change log gets.");
  if (in.log) m.sample("tidemark_log_end_offset", static_cast<double>(in.log->end_offset));
  m.family("tidemark_backlog_bytes", "gauge", "The server's WAL position minus what tidemark has received.");
  m.optional("tidemark_backlog_bytes", in.progress.backlog_bytes);
  return m.take();
}

StatusBoard::StatusBoard(const config::PipelineConfig& cfg, Save save, const Logger& log)
    : cfg_(cfg), save_(std::move(save)), log_(log) {}

void StatusBoard::setMonitor(const pg::SourceMonitor* monitor) {
  std::lock_guard lock(mutex_);
  monitor_ = monitor;
}

void StatusBoard::setDelivery(const SinkSet* sinks, const changelog::LocalLog* log) {
  std::lock_guard lock(mutex_);
  sinks_ = sinks;
  log_figures_ = log;
}

void StatusBoard::setState(PipelineState state, std::string reason) {
  std::lock_guard lock(mutex_);
  in_.state = state;
  in_.reason = std::move(reason);
  if (state != PipelineState::Retrying && state != PipelineState::Stalled) in_.retry.reset();
  update();
}

void StatusBoard::setRetrying(PipelineState state, std::string reason, RetryStatus retry) {
  std::lock_guard lock(mutex_);
  in_.state = state;
  in_.reason = std::move(reason);
  in_.retry = std::move(retry);
  update();
}

void StatusBoard::countRetry() {
  std::lock_guard lock(mutex_);
  ++in_.retries;
}

void StatusBoard::report(const pg::SessionStatus& session) {
  std::lock_guard lock(mutex_);
  int64_t now = unixMicrosNow();
  in_.session = session;
  if (monitor_ != nullptr) in_.monitor = monitor_->snapshot();
  // Rates over the time since the previous report.
  Progress& p = in_.progress;
  if (previous_ && now > previous_->first) {
    double secs = static_cast<double>(now - previous_->first) / 1e6;
    p.bytes_per_second = static_cast<double>(session.received.value() - std::min(session.received.value(), previous_->second.received.value())) / secs;
    p.events_per_second = static_cast<double>(session.events_delivered - std::min(session.events_delivered, previous_->second.events_delivered)) / secs;
  }
  previous_ = {now, session};
  const auto& slot = in_.monitor.slot;
  if (slot && slot->current_wal_lsn && session.received.valid()) {
    p.backlog_bytes = std::max<int64_t>(0, static_cast<int64_t>(slot->current_wal_lsn->value()) -
                                               static_cast<int64_t>(session.received.value()));
  }
  p.eta_seconds.reset();
  if (p.backlog_bytes && p.bytes_per_second && *p.bytes_per_second > 0) {
    p.eta_seconds = static_cast<int64_t>(static_cast<double>(*p.backlog_bytes) / *p.bytes_per_second);
  }
  // A large backlog is worth a line on the terminal now and then.
  constexpr int64_t kBigBacklog = 16 << 20;
  if (p.backlog_bytes && *p.backlog_bytes > kBigBacklog && now - last_progress_log_us_ > 10'000'000) {
    last_progress_log_us_ = now;
    log_.info("catching up: {:.1f} MiB of WAL behind, {:.1f} MiB/s, {:.0f} events/s, about {} s to go",
              static_cast<double>(*p.backlog_bytes) / (1 << 20), p.bytes_per_second.value_or(0) / (1 << 20),
              p.events_per_second.value_or(0), p.eta_seconds ? fmt::format("{}", *p.eta_seconds) : "?");
  }
  update();
}

StatusInput StatusBoard::input() const {
  StatusInput in = in_;
  if (in.state != PipelineState::Stopped && in.state != PipelineState::Failed) in.pid = ::getpid();
  in.now_us = unixMicrosNow();
  if (sinks_ != nullptr) in.sinks = sinks_->status();
  if (log_figures_ != nullptr && sinks_ != nullptr) {
    const Retention r = sinks_->retention();
    in.log = LogFigures{log_figures_->sizeBytes(), cfg_.buffer.max_bytes, log_figures_->startOffset(),
                        log_figures_->endOffset(), r.offset, r.sink};
  }
  // While the source side runs, a sink in trouble or a full log is what the state says.
  if (in.state == PipelineState::Running) {
    for (const SinkStatus& s : in.sinks) {
      if (s.worker.state == "running") continue;
      in.state = PipelineState::Retrying;
      in.reason = fmt::format("sink \"{}\" {}: {}", s.name, s.worker.state == "failed" ? "gave up" : "is retrying",
                              s.worker.error);
      if (s.worker.state == "retrying") {
        in.retry = RetryStatus{s.worker.error, s.worker.attempt, s.worker.retry_since_us, s.worker.gives_up_at_us};
      }
      break;
    }
  }
  if (in.state == PipelineState::Running && in.session.paused_by) {
    in.state = PipelineState::Paused;
    in.reason = fmt::format("the change log is at buffer.max_bytes; sink \"{}\" holds it back",
                            *in.session.paused_by);
  }
  return in;
}

void StatusBoard::update() {
  if (monitor_ != nullptr) in_.monitor = monitor_->snapshot();
  StatusInput in = input();
  json_ = renderStatus(cfg_, in);
  constexpr int64_t kSampleEvery = 10'000'000;
  constexpr size_t kSamples = 360;  // an hour
  if (samples_.empty() || in.now_us - samples_.back().t_us >= kSampleEvery) {
    const pg::Freshness& f = in.session.freshness;
    Sample s{in.now_us, in.state, std::nullopt, std::nullopt, std::nullopt, in.progress.backlog_bytes,
             in.progress.events_per_second};
    if (f.observed_written_us) s.age_ms = (in.now_us - *f.observed_written_us) / 1000;
    if (f.observed_written_us && f.observed_at_us) s.e2e_lag_ms = (*f.observed_at_us - *f.observed_written_us) / 1000;
    if (in.monitor.slot) s.retained_wal_bytes = in.monitor.slot->retained_wal_bytes;
    samples_.push_back(s);
    if (samples_.size() > kSamples) samples_.pop_front();
  }
  try {
    save_(json_);
  } catch (const Error& e) {
    // The status is for people; failing to save it must not stop the data.
    log_.warn("could not save the status: {}", e.what());
  }
}

std::string StatusBoard::json() const {
  std::lock_guard lock(mutex_);
  // Render afresh so age_ms is measured now.
  return renderStatus(cfg_, input());
}

std::string StatusBoard::metrics() const {
  std::lock_guard lock(mutex_);
  return renderMetrics(cfg_, input());
}

PipelineState StatusBoard::state() const {
  std::lock_guard lock(mutex_);
  return in_.state;
}

std::string StatusBoard::history() const {
  std::lock_guard lock(mutex_);
  Json samples = Json::array();
  for (const Sample& s : samples_) {
    samples.push_back({{"t", isoTime(s.t_us)},
                       {"state", stateName(s.state)},
                       {"age_ms", orNull(s.age_ms)},
                       {"e2e_lag_ms", orNull(s.e2e_lag_ms)},
                       {"retained_wal_bytes", orNull(s.retained_wal_bytes)},
                       {"backlog_bytes", orNull(s.backlog_bytes)},
                       {"events_per_second", s.events_per_second ? Json(static_cast<int64_t>(*s.events_per_second)) : Json(nullptr)}});
  }
  return Json{{"samples", samples}}.dump();
}

}  // namespace tidemark::pipeline
