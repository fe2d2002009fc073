#include "source/postgres/snapshot_reader.h"

#include <fmt/format.h>

#include <chrono>

#include "base/error.h"
#include "source/postgres/change_builder.h"

namespace tidemark::pg {

std::vector<std::string> splitKey(std::string_view key) {
  std::vector<std::string> out;
  while (!key.empty()) {
    const size_t end = key.find('\0');
    out.emplace_back(key.substr(0, end));
    key.remove_prefix(end == std::string_view::npos ? key.size() : end + 1);
  }
  return out;
}

SnapshotReaders::SnapshotReaders(Options options, Connection& first, const OpenConnection& open,
                                 const std::string& exported, const core::ChangeWriter& writer,
                                 std::vector<SnapshotPart> parts)
    : options_(std::move(options)), writer_(writer), parts_(std::move(parts)) {
  const size_t readers = std::max<size_t>(1, std::min(options_.threads, parts_.size()));
  // Every connection is open and in the snapshot before any reader starts: a failure here
  // leaves no thread to stop.
  for (size_t i = 1; i < readers; ++i) {
    connections_.push_back(open());
    importSnapshot(connections_.back(), exported);
  }
  running_ = parts_.empty() ? 0 : readers;
  if (parts_.empty()) return;
  threads_.emplace_back([this, &first] { read(first); });
  for (Connection& conn : connections_) threads_.emplace_back([this, &conn] { read(conn); });
}

SnapshotReaders::~SnapshotReaders() {
  {
    std::lock_guard lock(mu_);
    cancel_ = true;
  }
  changed_.notify_all();
  for (std::thread& t : threads_) t.join();
}

std::optional<SnapshotBatch> SnapshotReaders::next(const std::atomic<bool>& stop) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (error_) std::rethrow_exception(error_);
    if (!ready_.empty()) {
      SnapshotBatch batch = std::move(ready_.front());
      ready_.pop_front();
      lock.unlock();
      changed_.notify_all();
      return batch;
    }
    if (running_ == 0 || stop.load()) return std::nullopt;
    changed_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void SnapshotReaders::recycle(SnapshotBatch&& batch) {
  batch.end = false;
  batch.bytes.clear();
  batch.events.clear();
  batch.keys.clear();
  std::lock_guard lock(mu_);
  if (spare_.size() < options_.threads) spare_.push_back(std::move(batch));
}

SnapshotBatch SnapshotReaders::reuse() {
  std::lock_guard lock(mu_);
  if (spare_.empty()) return {};
  SnapshotBatch batch = std::move(spare_.back());
  spare_.pop_back();
  return batch;
}

std::optional<size_t> SnapshotReaders::take() {
  std::lock_guard lock(mu_);
  if (cancel_ || error_ || next_part_ == parts_.size()) return std::nullopt;
  return next_part_++;
}

bool SnapshotReaders::put(SnapshotBatch&& batch) {
  std::unique_lock lock(mu_);
  changed_.wait(lock, [this] { return cancel_ || ready_.size() < options_.threads; });
  if (cancel_) return false;
  ready_.push_back(std::move(batch));
  lock.unlock();
  changed_.notify_all();
  return true;
}

void SnapshotReaders::read(Connection& conn) {
  try {
    readParts(conn);
  } catch (...) {
    std::lock_guard lock(mu_);
    if (!error_) error_ = std::current_exception();
  }
  {
    std::lock_guard lock(mu_);
    --running_;
  }
  changed_.notify_all();
}

void SnapshotReaders::readParts(Connection& conn) {
  {
    events::ChangeBuilder builder(options_.server_name, options_.db, options_.utf8);
    std::unique_ptr<core::ChangeEncoder> encoder = writer_.encoder();
    pgoutput::TupleData tuple;
    while (std::optional<size_t> at = take()) {
      const SnapshotPart& part = parts_[*at];
      const std::vector<size_t>& key = part.relation->key;
      SnapshotCursor cursor(conn, *part.relation, part.after, options_.chunk_rows, part.until);
      for (;;) {
        Result chunk = cursor.next();
        const int n = PQntuples(chunk.get());
        if (n == 0) break;
        SnapshotBatch batch = reuse();
        batch.part = *at;
        batch.events.reserve(static_cast<size_t>(n));
        batch.keys.reserve(static_cast<size_t>(n));
        const int columns = PQnfields(chunk.get());
        for (int i = 0; i < n; ++i) {
          tuple.clear();
          for (int c = 0; c < columns; ++c) {
            if (PQgetisnull(chunk.get(), i, c)) {
              tuple.push_back({pgoutput::ColumnKind::Null, {}});
            } else {
              tuple.push_back({pgoutput::ColumnKind::Text,
                               std::string_view(PQgetvalue(chunk.get(), i, c),
                                                static_cast<size_t>(PQgetlength(chunk.get(), i, c)))});
            }
          }
          batch.events.push_back(encoder->encode(builder.read(*part.rel, tuple, options_.read), batch.bytes));
          std::string& k = batch.keys.emplace_back();
          for (size_t column : key) {
            k += tuple[column].value;  // key columns are never null
            k += '\0';
          }
        }
        batch.first = snapshotRow(chunk.get(), 0);
        batch.last = snapshotRow(chunk.get(), n - 1);
        if (!put(std::move(batch))) return;
      }
      SnapshotBatch end;
      end.part = *at;
      end.end = true;
      if (!put(std::move(end))) return;
    }
  }
}

}  // namespace tidemark::pg
