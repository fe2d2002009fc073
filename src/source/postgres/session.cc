#include "source/postgres/session.h"

#include <algorithm>
#include <thread>
#include <variant>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/error.h"
#include "source/postgres/capture.h"
#include "source/postgres/snapshot.h"
#include "source/postgres/values.h"

namespace tidemark::pg {

namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// How long one read waits at most, so that the stop flag, due flushes and status updates are
// looked at even when the server sends nothing.
constexpr std::chrono::milliseconds kReadWait{100};
constexpr std::chrono::milliseconds kReportEvery{2000};
constexpr std::chrono::milliseconds kReportSoonEvery{250};
constexpr std::chrono::milliseconds kStallCheckEvery{500};
// How often a full change log is looked at again, and how long reading waits meanwhile.
constexpr std::chrono::milliseconds kPauseCheckEvery{200};
constexpr std::chrono::milliseconds kPauseWait{50};
// The prefix of Layer 2 heartbeat messages (heartbeat.mode: message).
constexpr std::string_view kHeartbeatPrefix = "tidemark_heartbeat";
// The prefix of the message written after an incremental snapshot's chunk (never delivered).
constexpr std::string_view kWindowPrefix = "tidemark_window";
// How many recently streamed transaction ids are kept, to tell whether a chunk's snapshot
// missed one the stream already sent.
constexpr size_t kRecentXids = 65536;
// How long to wait before reading a chunk again after one had to be read again.
constexpr auto kChunkRetryWait = std::chrono::milliseconds(200);
// How often a status update asks the server for its position while a window waits for it.
constexpr auto kWindowPoke = std::chrono::milliseconds(250);

}  // namespace

Utf8Policy utf8Policy(const config::PipelineConfig& cfg) {
  return cfg.source.invalid_utf8 == "escape" ? Utf8Policy::Escape : Utf8Policy::Reject;
}

Session::Session(const config::PipelineConfig& cfg, std::optional<Lsn> until, core::ChangeWriter& out,
                 pg::ReplicationSource& source, events::Catalog catalog, events::Classifier classify,
                 const std::string& db, pg::Position position, const Logger& log, SourceMonitor* monitor,
                 StatusReport report)
    : cfg_(cfg),
      until_(until),
      delivery_(out),
      source_(source),
      relations_(std::move(catalog), classify),
      builder_(cfg.topic_prefix, db, utf8Policy(cfg)),
      db_(db),
      position_(std::move(position)),
      log_(log),
      monitor_(monitor),
      report_(std::move(report)),
      classify_(std::move(classify)) {
  durable_ = pending_ = received_ = position_.lsn;
  received_pub_.store(received_.value());
  durable_pub_.store(durable_.value());
}

SessionStatus Session::status() const {
  SessionStatus st;
  st.received = received_;
  st.durable = durable_;
  st.acknowledged = acknowledged_;
  st.events_delivered = events_delivered_;
  st.bytes_delivered = bytes_delivered_;
  st.pending_bytes = delivery_.pendingBytes();
  st.changes_skipped = changes_skipped_;
  if (paused_by_) st.paused_by = paused_by_->sink;
  for (const auto& [relid, skipped] : skipped_) st.skipped_tables[skipped.first] += skipped.second;
  st.freshness = freshness_;
  st.snapshot = snapshot_progress_;
  st.position_rebuilds = position_.rebuilds;
  st.incremental = position_.incremental;
  st.incremental_done = incremental_done_;
  st.incremental_rows = incremental_rows_;
  st.signals = signals_;
  st.signals_failed = signals_failed_;
  st.last_signal_error = last_signal_error_;
  return st;
}

StopReason Session::stream(const std::atomic<bool>& stop) {
  auto now = Clock::now();
  last_status_ = last_progress_ = now;
  last_status_pub_.store(now.time_since_epoch().count(), std::memory_order_release);
  next_heartbeat_event_ = now + cfg_.heartbeat.interval;
  next_report_ = now;
  next_stall_check_ = now + kStallCheckEvery;
  for (;;) {
    if (stop.load()) return finish(StopReason::Requested);
    if (reached_until_) return finish(StopReason::Until);
    maybeFlush();
    maybeHeartbeatEvent();
    maybeSendStatus();
    checkStall();
    checkCapture();
    maybeReport(false);
    maybeIncremental();
    if (paused()) {
      std::this_thread::sleep_for(kPauseWait);
      continue;
    }
    pg::Frame frame = source_.read(kReadWait);
    if (auto* d = std::get_if<pg::XLogData>(&frame)) {
      onData(*d);
    } else if (auto* k = std::get_if<pg::Keepalive>(&frame)) {
      onKeepalive(*k);
    } else if (std::holds_alternative<pg::StreamEnd>(frame)) {
      throw Error(ErrorClass::Retriable, "the server ended the replication stream");
    }
  }
}

void Session::salvage() {
  try {
    if (in_transaction_) delivery_.abortTransaction();
    in_transaction_ = false;
    makeDurable();
  } catch (const Error& e) {
    // The log could not take what was written (a full disk): nothing of it stays. The
    // position was not saved past what is durable, so the source sends it all again.
    log_.warn("could not make the transactions already written durable ({}); the change log goes "
              "back to what was saved with {}",
              e.what(), durable_.str());
    in_transaction_ = false;
    delivery_.dropUncommitted();
    pending_ = durable_;
  }
}

void Session::setReceived(Lsn lsn) {
  if (lsn <= received_) return;
  received_ = lsn;
  received_pub_.store(lsn.value(), std::memory_order_release);
  last_progress_ = Clock::now();
}

void Session::deliver(const core::Change& change) {
  bytes_delivered_ += delivery_.write(change);
  ++events_delivered_;
}

void Session::onData(const pg::XLogData& d) {
  setReceived(d.data_start);
  pgoutput::Message msg = decoder_.decode(d.payload);
  std::visit(Overloaded{
                 [&](const pgoutput::BeginMessage& m) { onBegin(m); },
                 [&](const pgoutput::CommitMessage& m) { onCommit(m); },
                 [&](const pgoutput::OriginMessage& m) {
                   if (!skipping_) builder_.setOrigin(m.origin_name, m.origin_lsn);
                 },
                 [&](const pgoutput::RelationMessage& m) { relations_.update(m); },
                 [&](const pgoutput::TypeMessage& m) { relations_.noteType(m); },
                 [&](const pgoutput::InsertMessage& m) {
                   if (skipping_) return;
                   const auto& rel = relation(m.relid);
                   if (rel.heartbeat) onHeartbeatRow(rel, *m.new_tuple);
                   if (isSignalTable(rel)) onSignalRow(rel, *m.new_tuple);
                   if (!delivers(rel)) return;
                   inWindow(rel, nullptr, m.new_tuple);
                   deliver(builder_.change(core::Op::Create, rel, d.data_start, nullptr,
                                           pgoutput::OldTupleKind::None, m.new_tuple));
                 },
                 [&](const pgoutput::UpdateMessage& m) { onUpdate(m, d.data_start); },
                 [&](const pgoutput::DeleteMessage& m) {
                   if (skipping_) return;
                   const auto& rel = relation(m.relid);
                   if (!delivers(rel)) return;
                   inWindow(rel, m.old_tuple, nullptr);
                   deliver(builder_.change(core::Op::Delete, rel, d.data_start, m.old_tuple, m.old_kind, nullptr));
                 },
                 [&](const pgoutput::TruncateMessage& m) {
                   if (skipping_) return;
                   for (RelationId id : m.relids) {
                     const auto& rel = relation(id);
                     if (!delivers(rel)) continue;
                     if (window_ && window_->relid() == rel.relid) discardWindow("the table was truncated");
                     deliver(builder_.truncate(rel, d.data_start));
                   }
                 },
                 [&](const pgoutput::LogicalDecodingMessage& m) { onMessage(m, d.data_start); },
             },
             msg);
}

bool Session::delivers(const events::Relation& rel) {
  if (rel.captured) {
    tx_has_changes_ = true;
    if (!rel.note.empty() && noted_.insert(rel.relid).second) log_.warn("{}", rel.note);
    return true;
  }
  if (rel.heartbeat) return cfg_.heartbeat.deliver;
  // Published but not captured (a publication shared with others, FOR ALL TABLES, the signal
  // table): skipped on purpose, said once and counted.
  ++changes_skipped_;
  auto [it, first] = skipped_.try_emplace(rel.relid);
  if (first) it->second.first = fmt::format("{}.{}", rel.stream_schema, rel.stream_table);
  ++it->second.second;
  if (noted_.insert(rel.relid).second) {
    log_.info("skipping the changes of {}.{}: {} (counted in status as events.skipped)", rel.stream_schema,
              rel.stream_table, rel.note);
  }
  return false;
}

const events::Relation& Session::relation(RelationId id) {
  const events::Relation* rel = relations_.find(id);
  if (rel == nullptr) {
    throw Error(ErrorClass::Fatal,
                fmt::format("the server sent a change for relation {} before describing it "
                            "(no Relation message)",
                            id.value));
  }
  return *rel;
}

void Session::onBegin(const pgoutput::BeginMessage& m) {
  if (in_transaction_) {
    throw Error(ErrorClass::Fatal, fmt::format("Begin of transaction {} inside another", m.xid.value));
  }
  if (until_ && m.final_lsn > *until_) {
    reached_until_ = true;
    skipping_ = true;  // committed after --until-lsn: not this run's to deliver
    return;
  }
  // The server skips transactions that committed before the start position; this guards
  // against one sent anyway (its data is already durable). One the initial snapshot saw is
  // in the log as its rows already.
  skipping_ = m.final_lsn < durable_ || (position_.cover && position_.cover->covers(m.xid.value, m.final_lsn));
  // A chunk's rows are written once the stream is past its high watermark, before the first
  // transaction that committed after it.
  if (window_ && m.final_lsn >= window_->high()) closeWindow();
  tx_unseen_by_window_ = window_ && !window_->cover().covers(m.xid.value, m.final_lsn);
  noteCommitted(m.xid.value);
  in_transaction_ = !skipping_;
  tx_has_changes_ = false;
  tx_observed_written_us_.reset();
  builder_.beginTransaction(m.xid, m.commit_time);
}

void Session::onCommit(const pgoutput::CommitMessage& m) {
  if (skipping_) {
    skipping_ = false;
    return;
  }
  if (!in_transaction_) throw Error(ErrorClass::Fatal, "Commit without Begin");
  in_transaction_ = false;
  builder_.endTransaction(m.end_lsn);
  delivery_.endTransaction(m.end_lsn.str());
  setPending(m.end_lsn);
  if (tx_has_changes_) {
    // A commit of captured data proves the stream live as a heartbeat would, and its commit
    // time measures the lag the same way.
    observe(m.commit_time + pgoutput::kPgEpochOffsetMicros, false);
    if (monitor_ != nullptr) monitor_->noteCapturedChange();
  }
  if (tx_observed_written_us_) undelivered_ = Observation{m.end_lsn, *tx_observed_written_us_, delivery_.nextOffset()};
  if (until_ && m.end_lsn >= *until_) reached_until_ = true;
  maybeFlush();
}

void Session::onUpdate(const pgoutput::UpdateMessage& m, Lsn lsn) {
  if (skipping_) return;
  const auto& rel = relation(m.relid);
  if (rel.heartbeat) onHeartbeatRow(rel, *m.new_tuple);
  if (!delivers(rel)) return;
  inWindow(rel, m.old_tuple, m.new_tuple);
  if (m.old_tuple != nullptr && rel.has_key &&
      events::ChangeBuilder::keyChanged(rel, *m.old_tuple, *m.new_tuple)) {
    // As Debezium does: an update that changes the key is a delete of the old key and a
    // create of the new one, so consumers keyed by it see both. The create takes the values
    // the update left unchanged (TOASTed, not resent) from the old tuple, when it has them.
    deliver(builder_.change(core::Op::Delete, rel, lsn, m.old_tuple, m.old_kind, nullptr));
    deliver(builder_.change(core::Op::Create, rel, lsn, nullptr, pgoutput::OldTupleKind::None, m.new_tuple,
                            m.old_tuple));
    return;
  }
  // The server sends an old key for an update that keeps the key only when a key value is
  // TOASTed. As in Debezium, it is the before-image (its other columns null), and it fills in
  // the TOASTed value the new row does not resend.
  deliver(builder_.change(core::Op::Update, rel, lsn, m.old_tuple, m.old_kind, m.new_tuple, m.old_tuple));
}

void Session::onHeartbeatRow(const events::Relation& rel, const pgoutput::TupleData& tuple) {
  std::optional<std::string_view> pipeline, ts;
  for (size_t i = 0; i < rel.columns.size() && i < tuple.size(); ++i) {
    if (tuple[i].kind != pgoutput::ColumnKind::Text) continue;
    if (rel.columns[i].name == "pipeline") pipeline = tuple[i].value;
    if (rel.columns[i].name == "ts") ts = tuple[i].value;
  }
  // The table may serve several pipelines; each measures its own row.
  if (pipeline != cfg_.name || !ts) return;
  try {
    observe(events::timestampTzUnixMicros(*ts), true);
  } catch (const Error& e) {
    log_.warn("heartbeat row of {}.{} has an unreadable ts: {}", rel.schema, rel.table, e.what());
  }
}

void Session::observe(int64_t written_us, bool heartbeat) {
  int64_t now = unixMicrosNow();
  if (!freshness_.observed_written_us || written_us >= *freshness_.observed_written_us) {
    freshness_.observed_written_us = written_us;
    freshness_.observed_at_us = now;
  }
  if (heartbeat && (!freshness_.heartbeat_written_us || written_us > *freshness_.heartbeat_written_us)) {
    freshness_.heartbeat_written_us = written_us;
  }
  report_soon_ = true;
  if (!tx_observed_written_us_ || written_us > *tx_observed_written_us_) tx_observed_written_us_ = written_us;
}

void Session::onMessage(const pgoutput::LogicalDecodingMessage& m, Lsn lsn) {
  if (m.prefix == kWindowPrefix) {
    // Written after a chunk was read, to bring the stream past its high watermark promptly.
    if (!m.transactional && !in_transaction_ && window_ && lsn >= window_->high()) closeWindow();
    return;
  }
  if (m.prefix == kHeartbeatPrefix && !skipping_) {
    try {
      auto content = nlohmann::json::parse(m.content);
      if (content.value("pipeline", "") == cfg_.name) observe(content.at("ts_us").get<int64_t>(), true);
    } catch (const std::exception& e) {
      log_.warn("unreadable heartbeat message: {}", e.what());
    }
    if (!cfg_.heartbeat.deliver) return;
  }
  if (m.transactional) {
    if (skipping_) return;
    deliver(builder_.message(m, lsn, true));
    return;
  }
  // Non-transactional: delivered on its own. Its position is just past it, so a restart
  // from there does not send it again.
  if (lsn < durable_) return;
  deliver(builder_.message(m, lsn, false));
  if (!in_transaction_) {
    delivery_.endTransaction(std::max(Lsn{lsn.value() + 1}, std::max(pending_, durable_)).str());
    setPending(Lsn{lsn.value() + 1});
  }
}

void Session::onKeepalive(const pg::Keepalive& k) {
  setReceived(k.wal_end);
  // Everything the server decoded before wal_end has arrived; with no transaction open it is
  // all in the sinks, so wal_end can become the position once they are durable.
  if (!in_transaction_ && !skipping_) {
    if (window_ && k.wal_end >= window_->high()) closeWindow();
    if (cfg_.source.confirm_keepalives) setPending(k.wal_end);
    if (until_ && k.wal_end >= *until_) reached_until_ = true;
  }
  if (k.reply_requested) sendStatus();
}

void Session::setPending(Lsn lsn) {
  if (lsn <= pending_) return;
  if (pending_ == durable_) pending_since_ = Clock::now();
  pending_ = lsn;
}

void Session::maybeFlush() {
  // Inside a transaction nothing can become durable: what is durable ends at a commit.
  if (in_transaction_ || pending_ <= durable_) return;
  if (Clock::now() - pending_since_ >= cfg_.delivery.flush_interval ||
      delivery_.pendingBytes() >= cfg_.delivery.flush_bytes) {
    makeDurable();
    sendStatus();
  }
}

void Session::makeDurable(bool force) {
  if (pending_ <= durable_ && !force) return;
  // Past the snapshot's transactions, the stream has nothing more of them to skip.
  if (position_.cover && std::max(pending_, durable_) >= position_.cover->through) position_.cover.reset();
  pg::Position p = position_;
  p.lsn = std::max(pending_, durable_);
  delivery_.commit(pg::encodePosition(p));
  durable_ = p.lsn;
  durable_pub_.store(durable_.value(), std::memory_order_release);
  if (undelivered_ && undelivered_->end <= durable_) {
    freshness_.delivered_written_us = undelivered_->written_us;
    freshness_.delivered_offset = undelivered_->log_offset;
    freshness_.delivered_at_us = unixMicrosNow();
    undelivered_.reset();
  }
}

bool Session::paused() {
  // A transaction is read to its end even past the cap: the sinks can free nothing of it
  // before they have all of it.
  if (in_transaction_) return false;
  auto now = Clock::now();
  if (now < next_pause_check_) {
    // Between checks, reading stops the moment the log (and what waits to be committed to
    // it) reaches the cap.
    if (paused_by_) return true;
    if (!delivery_.atCap()) return false;
  }
  next_pause_check_ = now + kPauseCheckEvery;
  std::optional<core::Retention> holder = delivery_.full();
  if (holder && pending_ > durable_) {
    // At the cap with whole transactions still in memory: they go to disk first, so that the
    // sinks can read them and free a segment.
    makeDurable();
    sendStatus();
    holder = delivery_.full();
  }
  const bool full = holder.has_value();
  if (full && !paused_by_) {
    log_.warn("the change log is at buffer.max_bytes ({} bytes): reading from the source pauses until "
              "sink \"{}\" consumes more (it is at offset {})",
              cfg_.buffer.max_bytes, holder->sink, holder->offset);
    report_soon_ = true;
  } else if (!full && paused_by_) {
    log_.info("the change log has room again: reading from the source resumes");
    report_soon_ = true;
  }
  paused_by_ = holder;
  return full;
}

void Session::maybeHeartbeatEvent() {
  if (!cfg_.heartbeat.events || in_transaction_) return;
  auto now = Clock::now();
  if (now < next_heartbeat_event_) return;
  next_heartbeat_event_ = now + cfg_.heartbeat.interval;
  // Layer 1: the event, then a commit of the position with it, keepalive progress included.
  bytes_delivered_ += delivery_.heartbeat(unixMicrosNow() / 1000);
  ++events_delivered_;
  delivery_.endTransaction(std::max(pending_, durable_).str());
  makeDurable(true);
  sendStatus();
}

void Session::checkStall() {
  if (monitor_ == nullptr || !monitor_->writesVisible()) return;
  auto now = Clock::now();
  if (now < next_stall_check_) return;
  next_stall_check_ = now + kStallCheckEvery;
  MonitorSnapshot snap = monitor_->snapshot();
  if (!snap.last_written_us || !snap.last_written_seen) return;
  bool seen = freshness_.heartbeat_written_us && *freshness_.heartbeat_written_us >= *snap.last_written_us;
  if (seen) {
    unseen_since_.reset();
    return;
  }
  if (!unseen_since_) unseen_since_ = *snap.last_written_seen;
  auto bound = cfg_.heartbeat.stallTimeout();
  // A stream catching up on a backlog is slow, not stalled: it still sends. Only a heartbeat
  // overdue while the server has sent nothing new for as long is a stall.
  if (now - *unseen_since_ < bound || now - last_progress_ < bound) return;
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - *unseen_since_).count();
  throw StallError(fmt::format(
      "the stream is stalled: the heartbeat written {} s ago has not come through, and the "
      "server has sent nothing for {} s (heartbeat.stall_timeout {} s)",
      secs, std::chrono::duration_cast<std::chrono::seconds>(now - last_progress_).count(),
      std::chrono::duration_cast<std::chrono::seconds>(bound).count()));
}

void Session::checkCapture() {
  if (monitor_ == nullptr) return;
  auto now = Clock::now();
  if (now < next_capture_check_) return;
  next_capture_check_ = now + kStallCheckEvery;
  std::vector<CaptureProblem> problems = monitor_->captureProblems();
  if (problems.empty()) return;
  // The source no longer sends what is configured (docs/GUARANTEES.md, guarantee 2): stop loudly.
  // What is already whole is made durable by salvage(); nothing past it is confirmed.
  throw captureError(problems);
}

void Session::maybeReport(bool force) {
  if (!report_) return;
  auto now = Clock::now();
  // Readers of the saved status measure the heartbeat age from it, so a heartbeat that came
  // through is saved promptly (at most every kReportSoonEvery) rather than at the next tick.
  bool soon = report_soon_ && now >= last_report_ + kReportSoonEvery;
  if (!force && !soon && now < next_report_) return;
  report_soon_ = false;
  last_report_ = now;
  next_report_ = now + kReportEvery;
  report_(status());
}

void Session::maybeSendStatus() {
  if (Clock::now() - last_status_ >= cfg_.source.status_interval) sendStatus();
}

void Session::sendStatus() {
  source_.sendStatus(received_, durable_);
  acknowledged_ = durable_;
  last_status_ = Clock::now();
  last_status_pub_.store(last_status_.time_since_epoch().count(), std::memory_order_release);
}

StopReason Session::finish(StopReason why) {
  if (in_transaction_) {
    // A clean stop inside a transaction: drop its partial output; the server sends the whole
    // transaction again next time, because its commit was never confirmed.
    delivery_.abortTransaction();
    in_transaction_ = false;
  }
  makeDurable();
  sendStatus();
  source_.finish();
  maybeReport(true);
  log_.info("stopped at {} ({})", durable_.str(),
            why == StopReason::Until ? "reached --until-lsn" : "stop requested");
  return why;
}

// ---------------------------------------------------------------------------------------------
// Incremental snapshots

void Session::enableIncremental(OpenConnection open, PollSignals poll, SignalTaken taken) {
  open_chunk_connection_ = std::move(open);
  poll_signals_ = std::move(poll);
  signal_taken_ = std::move(taken);
}

bool Session::isCaptured(const std::string& schema, const std::string& table) const {
  return classify_(RelationId{0}, schema, table).role == events::RelationRole::Captured;
}

bool Session::isSignalTable(const events::Relation& rel) const {
  return rel.stream_schema == cfg_.signal.table.schema && rel.stream_table == cfg_.signal.table.table;
}

void Session::onSignalRow(const events::Relation& rel, const pgoutput::TupleData& tuple) {
  Signal signal;
  for (size_t i = 0; i < rel.columns.size() && i < tuple.size(); ++i) {
    if (tuple[i].kind != pgoutput::ColumnKind::Text) continue;
    if (rel.columns[i].name == "id") signal.id = tuple[i].value;
    if (rel.columns[i].name == "type") signal.type = tuple[i].value;
    if (rel.columns[i].name == "data") signal.data = tuple[i].value;
  }
  takeSignal(signal);
}

void Session::takeSignal(const Signal& signal) {
  const bool had = position_.incremental.has_value();
  SignalOutcome outcome = applySignal(position_.incremental, signal, [this](const std::string& schema,
                                                                           const std::string& table) {
    return isCaptured(schema, table);
  });
  ++signals_;
  if (!outcome.ok) {
    ++signals_failed_;
    last_signal_error_ = outcome.message;
    log_.error("{}", outcome.message);
    return;
  }
  log_.info("{}", outcome.message);
  // A stopped snapshot takes its window with it.
  if (had && !position_.incremental && window_) window_.reset();
  // A window of a table no longer first (stopped), or of a paused snapshot, is read again.
  if (window_ && position_.incremental) {
    const auto& tables = position_.incremental->tables;
    if (tables.empty() || position_.incremental->paused || tables.front().schema != window_->relation().nspname ||
        tables.front().table != window_->relation().relname) {
      window_.reset();
    }
  }
  report_soon_ = true;
}

void Session::noteCommitted(uint32_t xid) {
  if (!open_chunk_connection_) return;
  if (recent_xid_set_.insert(xid).second) recent_xids_.push_back(xid);
  while (recent_xids_.size() > kRecentXids) {
    recent_xid_set_.erase(recent_xids_.front());
    recent_xids_.pop_front();
  }
}

void Session::inWindow(const events::Relation& rel, const pgoutput::TupleData* old_tuple,
                       const pgoutput::TupleData* new_tuple) {
  if (!window_ || !tx_unseen_by_window_ || rel.relid != window_->relid()) return;
  if (!window_->drop(rel, old_tuple, new_tuple)) discardWindow("a change's key could not be told (a TOASTed key)");
}

void Session::discardWindow(std::string_view why) {
  log_.debug("incremental snapshot: the chunk is read again ({})", why);
  window_.reset();
  next_chunk_ = Clock::now() + kChunkRetryWait;
}

void Session::maybeIncremental() {
  if (!open_chunk_connection_ || in_transaction_ || skipping_) return;
  const auto now = Clock::now();
  if (poll_signals_ && now >= next_signal_poll_) {
    next_signal_poll_ = now + std::chrono::seconds(1);
    std::vector<Signal> waiting = poll_signals_();
    if (!waiting.empty()) {
      for (const Signal& s : waiting) takeSignal(s);
      makeDurable(true);
      for (const Signal& s : waiting) signal_taken_(s);
    }
  }
  if (window_) {
    // Until the stream passes the high watermark: a status update asking for a reply brings a
    // keepalive with the server's position, which closes the window when nothing else does
    // (an idle read-only source).
    if (now >= next_window_poke_) {
      next_window_poke_ = now + kWindowPoke;
      source_.sendStatus(received_, durable_, true);
    }
    return;
  }
  if (!position_.incremental || position_.incremental->paused || now < next_chunk_) return;
  IncrementalState& state = *position_.incremental;
  if (state.tables.empty()) {
    incremental_done_ = state.id;
    log_.info("incremental snapshot {} done", state.id);
    position_.incremental.reset();
    makeDurable(true);
    report_soon_ = true;
    return;
  }
  IncrementalTable& table = state.tables.front();
  if (!isCaptured(table.schema, table.table)) {
    log_.error("incremental snapshot {}: {}.{} is not captured any more; it is left out", state.id, table.schema,
               table.table);
    state.tables.erase(state.tables.begin());
    return;
  }
  if (!chunk_connection_) chunk_connection_.emplace(open_chunk_connection_());
  // The captured table's OID, as the catalog has it now.
  Result oid = chunk_connection_->execParams("SELECT to_regclass($1)::oid::int8",
                                             {quoteTableText(table.schema, table.table)},
                                             fmt::format("looking up {}.{}", table.schema, table.table));
  if (PQgetisnull(oid.get(), 0, 0)) {
    log_.error("incremental snapshot {}: {}.{} does not exist any more; it is left out", state.id, table.schema,
               table.table);
    state.tables.erase(state.tables.begin());
    makeDurable(true);
    return;
  }
  const state::CapturedTable captured{table.schema, table.table,
                                      RelationId{static_cast<uint32_t>(std::stoul(PQgetvalue(oid.get(), 0, 0)))}};
  IncrementalWindow window;
  try {
    window = IncrementalWindow::read(*chunk_connection_, table, captured, cfg_.source.snapshot_chunk_rows);
  } catch (const Error& e) {
    if (e.errorClass() != ErrorClass::Config) throw;
    ++signals_failed_;
    last_signal_error_ = e.describe();
    log_.error("incremental snapshot {}: {}; the table is left out", state.id, e.describe());
    state.tables.erase(state.tables.begin());
    makeDurable(true);
    return;
  }
  if (window.empty()) {
    log_.info("incremental snapshot {}: {}.{} done, {} row(s)", state.id, table.schema, table.table, table.rows);
    state.tables.erase(state.tables.begin());
    makeDurable(true);
    report_soon_ = true;
    return;
  }
  // A transaction the snapshot did not see, but the stream already sent: the chunk's rows of
  // it would be older than what was streamed. Rare (a commit visible late); read again.
  for (uint64_t running : window.cover().xip) {
    if (recent_xid_set_.count(static_cast<uint32_t>(running)) > 0) {
      discardWindow("its snapshot missed a transaction already streamed");
      return;
    }
  }
  window_ = std::move(window);
  tx_unseen_by_window_ = false;
  if (!cfg_.source.read_only) {
    chunk_connection_->exec(fmt::format("SELECT pg_logical_emit_message(false, '{}', '')", kWindowPrefix),
                            "writing the chunk's watermark message");
  }
  next_window_poke_ = Clock::now();
  if (std::max(pending_, durable_) >= window_->high()) closeWindow();
}

void Session::closeWindow() {
  IncrementalWindow window = std::move(*window_);
  window_.reset();
  if (!position_.incremental || position_.incremental->tables.empty()) return;
  IncrementalTable& table = position_.incremental->tables.front();
  // The rows are written with the relation as the stream knows it; one that changed since
  // (DDL) is read again once the stream describes it anew.
  const events::Relation* known = relations_.find(window.relid());
  if (known != nullptr) {
    bool same = known->columns.size() == window.relation().columns.size();
    for (size_t i = 0; same && i < known->columns.size(); ++i) {
      same = known->columns[i].name == window.relation().columns[i].name &&
             known->columns[i].type_oid == window.relation().columns[i].type;
    }
    if (!same) {
      discardWindow("the table's columns changed");
      return;
    }
  }
  const events::Relation& rel = known != nullptr ? *known : relations_.update(window.relation());
  const events::PostgresSourceBlock::SnapshotRead read{.marker = "incremental", .txid = std::nullopt,
                                                       .ts_us = unixMicrosNow(), .lsn = std::max(pending_, durable_)};
  pgoutput::TupleData tuple;
  uint64_t n = 0;
  window.forEachRow([&](const SnapshotRow& row) {
    asTuple(row, tuple);
    deliver(builder_.read(rel, tuple, read));
    ++n;
  });
  table.after = window.lastKey();
  table.until = window.until();
  table.rows += n;
  incremental_rows_ += n;
  delivery_.endTransaction(std::max(pending_, durable_).str());
  makeDurable(true);
  maybeReport(false);
}

}  // namespace tidemark::pg
