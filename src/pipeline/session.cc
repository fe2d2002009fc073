#include "pipeline/session.h"

#include <variant>

#include <fmt/format.h>

#include "common/error.h"

namespace tidemark::pipeline {

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

}  // namespace

Delivery::Delivery(std::vector<std::unique_ptr<sinks::Sink>> sinks, state::OffsetStore& store)
    : sinks_(std::move(sinks)), store_(store) {}

void Delivery::recover(const std::optional<state::StoredPosition>& stored) {
  for (auto& s : sinks_) {
    std::optional<std::string> cp;
    if (stored) {
      auto it = stored->sinks.find(s->name());
      // A sink added since the last run has no checkpoint: keep what its files hold.
      if (it != stored->sinks.end()) cp = it->second;
    }
    s->recover(cp);
  }
}

void Delivery::write(const events::Event& e) {
  for (auto& s : sinks_) s->write(e);
}

void Delivery::markTransactionEnd() {
  for (auto& s : sinks_) s->markTransactionEnd();
}

void Delivery::rollbackToMark() {
  for (auto& s : sinks_) s->rollbackToMark();
}

uint64_t Delivery::pendingBytes() const {
  uint64_t n = 0;
  for (const auto& s : sinks_) n += s->pendingBytes();
  return n;
}

void Delivery::makeDurable(state::StoredPosition position) {
  for (auto& s : sinks_) s->flush();
  for (const auto& s : sinks_) position.sinks[s->name()] = s->checkpoint();
  store_.save(position);
}

Session::Session(const config::PipelineConfig& cfg, const RunOptions& options, Delivery& delivery,
                 pg::ReplicationSource& source, events::Catalog catalog, const std::string& db,
                 state::StoredPosition position, const Logger& log)
    : cfg_(cfg),
      options_(options),
      delivery_(delivery),
      source_(source),
      relations_(cfg.topic_prefix, std::move(catalog),
                 [&cfg](std::string_view schema, std::string_view table) {
                   for (const auto& t : cfg.source.tables) {
                     if (t.schema == schema && t.table == table) return true;
                   }
                   return false;
                 }),
      builder_(cfg.topic_prefix, db),
      position_(std::move(position)),
      log_(log) {
  durable_ = pending_ = received_ = position_.lsn;
}

StopReason Session::stream(const std::atomic<bool>& stop) {
  last_status_ = Clock::now();
  for (;;) {
    if (stop.load()) return finish(StopReason::Requested);
    if (reached_until_) return finish(StopReason::UntilLsn);
    maybeFlush();
    maybeSendStatus();
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
  if (in_transaction_) delivery_.rollbackToMark();
  in_transaction_ = false;
  makeDurable();
}

void Session::onData(const pg::XLogData& d) {
  if (d.data_start > received_) received_ = d.data_start;
  pgoutput::Message msg = decoder_.decode(d.payload);
  std::visit(Overloaded{
                 [&](const pgoutput::BeginMessage& m) { onBegin(m); },
                 [&](const pgoutput::CommitMessage& m) { onCommit(m); },
                 [&](const pgoutput::OriginMessage&) {},
                 [&](const pgoutput::RelationMessage& m) { relations_.update(m); },
                 [&](const pgoutput::TypeMessage& m) { relations_.invalidateType(m.type); },
                 [&](const pgoutput::InsertMessage& m) {
                   if (skipping_) return;
                   const auto& rel = relation(m.relid);
                   if (!rel.captured) return;
                   delivery_.write(builder_.change('c', rel, d.data_start, nullptr,
                                                   pgoutput::OldTupleKind::None, m.new_tuple));
                 },
                 [&](const pgoutput::UpdateMessage& m) { onUpdate(m, d.data_start); },
                 [&](const pgoutput::DeleteMessage& m) {
                   if (skipping_) return;
                   const auto& rel = relation(m.relid);
                   if (!rel.captured) return;
                   delivery_.write(builder_.change('d', rel, d.data_start, m.old_tuple, m.old_kind, nullptr));
                 },
                 [&](const pgoutput::TruncateMessage& m) {
                   if (skipping_) return;
                   for (RelationId id : m.relids) {
                     const auto& rel = relation(id);
                     if (rel.captured) delivery_.write(builder_.truncate(rel, d.data_start));
                   }
                 },
                 [&](const pgoutput::LogicalDecodingMessage& m) { onMessage(m, d.data_start); },
             },
             msg);
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
  if (options_.until_lsn && m.final_lsn > *options_.until_lsn) {
    reached_until_ = true;
    skipping_ = true;  // committed after --until-lsn: not this run's to deliver
    return;
  }
  // The server skips transactions that committed before the start position; this guards
  // against one sent anyway (its data is already durable).
  skipping_ = m.final_lsn < durable_;
  in_transaction_ = !skipping_;
  builder_.beginTransaction(m.xid, m.commit_time);
}

void Session::onCommit(const pgoutput::CommitMessage& m) {
  if (skipping_) {
    skipping_ = false;
    return;
  }
  if (!in_transaction_) throw Error(ErrorClass::Fatal, "Commit without Begin");
  in_transaction_ = false;
  builder_.endTransaction(m.commit_lsn);
  delivery_.markTransactionEnd();
  setPending(m.end_lsn);
  if (options_.until_lsn && m.end_lsn >= *options_.until_lsn) reached_until_ = true;
  maybeFlush();
}

void Session::onUpdate(const pgoutput::UpdateMessage& m, Lsn lsn) {
  if (skipping_) return;
  const auto& rel = relation(m.relid);
  if (!rel.captured) return;
  if (m.old_tuple != nullptr && rel.has_key &&
      events::EnvelopeBuilder::keyChanged(rel, *m.old_tuple, *m.new_tuple)) {
    // As Debezium does: an update that changes the key is a delete of the old key and a
    // create of the new one, so consumers keyed by it see both.
    delivery_.write(builder_.change('d', rel, lsn, m.old_tuple, m.old_kind, nullptr));
    delivery_.write(builder_.change('c', rel, lsn, nullptr, pgoutput::OldTupleKind::None, m.new_tuple));
    return;
  }
  const pgoutput::TupleData* before = m.old_kind == pgoutput::OldTupleKind::Full ? m.old_tuple : nullptr;
  delivery_.write(builder_.change('u', rel, lsn, before, m.old_kind, m.new_tuple));
}

void Session::onMessage(const pgoutput::LogicalDecodingMessage& m, Lsn lsn) {
  if (m.transactional) {
    if (skipping_) return;
    delivery_.write(builder_.message(m, lsn, true));
    return;
  }
  // Non-transactional: delivered on its own. Its position is just past it, so a restart
  // from there does not send it again.
  if (lsn < durable_) return;
  delivery_.write(builder_.message(m, lsn, false));
  if (!in_transaction_) {
    delivery_.markTransactionEnd();
    setPending(Lsn{lsn.value() + 1});
  }
}

void Session::onKeepalive(const pg::Keepalive& k) {
  if (k.wal_end > received_) received_ = k.wal_end;
  // Everything the server decoded before wal_end has arrived; with no transaction open it is
  // all in the sinks, so wal_end can become the position once they are durable.
  if (!in_transaction_ && !skipping_) {
    setPending(k.wal_end);
    if (options_.until_lsn && k.wal_end >= *options_.until_lsn) reached_until_ = true;
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

void Session::makeDurable() {
  if (pending_ <= durable_) return;
  state::StoredPosition p = position_;
  p.lsn = pending_;
  delivery_.makeDurable(p);
  durable_ = pending_;
}

void Session::maybeSendStatus() {
  if (Clock::now() - last_status_ >= cfg_.source.status_interval) sendStatus();
}

void Session::sendStatus() {
  source_.sendStatus(received_, durable_);
  last_status_ = Clock::now();
}

StopReason Session::finish(StopReason why) {
  if (in_transaction_) {
    // A clean stop inside a transaction: drop its partial output; the server sends the whole
    // transaction again next time, because its commit was never confirmed.
    delivery_.rollbackToMark();
    in_transaction_ = false;
  }
  makeDurable();
  sendStatus();
  source_.finish();
  log_.info("stopped at {} ({})", durable_.str(),
            why == StopReason::UntilLsn ? "reached --until-lsn" : "stop requested");
  return why;
}

}  // namespace tidemark::pipeline
