#include "source/postgres/pgoutput_decoder.h"

#include <fmt/format.h>

#include <cctype>

#include "base/byte_reader.h"

namespace tidemark::pgoutput {

namespace {

Lsn readLsn(ByteReader& r, std::string_view field, bool may_be_unset = false) {
  Lsn lsn{r.readU64(field)};
  if (!lsn.valid() && !may_be_unset) r.fail(fmt::format("{} is unset (0/0)", field));
  return lsn;
}

void readTuple(ByteReader& r, TupleData& tuple) {
  int16_t ncols = r.readI16("tuple column count");
  if (ncols < 0) r.fail(fmt::format("negative tuple column count {}", ncols));
  tuple.clear();
  tuple.reserve(static_cast<size_t>(ncols));
  for (int16_t i = 0; i < ncols; ++i) {
    char kind = static_cast<char>(r.readU8("tuple column kind"));
    switch (kind) {
      case 'n':
        tuple.push_back({ColumnKind::Null, {}});
        break;
      case 'u':
        tuple.push_back({ColumnKind::UnchangedToast, {}});
        break;
      case 't':
      case 'b': {
        int32_t len = r.readI32("tuple column length");
        // The column's number goes into the error only: formatting it for every value costs
        // a twentieth of the decoding.
        if (len < 0 || static_cast<uint64_t>(len) > r.remaining()) {
          r.readBytes(len, fmt::format("tuple column {} value", i));  // throws, naming the column
        }
        std::string_view value = r.readBytes(len, "tuple column value");
        tuple.push_back({kind == 't' ? ColumnKind::Text : ColumnKind::Binary, value});
        break;
      }
      default:
        r.fail(fmt::format("tuple column {} has unknown kind byte 0x{:02x}", i,
                           static_cast<unsigned char>(kind)));
    }
  }
}

RelationId readRelid(ByteReader& r) {
  uint32_t oid = r.readU32("relation id");
  if (oid == 0) r.fail("relation id is 0");
  return RelationId{oid};
}

// The 'N' that precedes a new tuple, already read as `marker`.
void expectNewTupleMarker(ByteReader& r, char marker) {
  if (marker != 'N') {
    r.fail(fmt::format("expected new tuple marker 'N', got 0x{:02x}", static_cast<unsigned char>(marker)));
  }
}

OldTupleKind readOldKind(ByteReader& r, char byte) {
  if (byte == 'K') return OldTupleKind::Key;
  if (byte == 'O') return OldTupleKind::Full;
  r.fail(fmt::format("expected old tuple marker 'K' or 'O', got 0x{:02x}",
                     static_cast<unsigned char>(byte)));
}

}  // namespace

std::string_view messageTypeName(char type) {
  switch (type) {
    case 'B': return "Begin";
    case 'C': return "Commit";
    case 'O': return "Origin";
    case 'R': return "Relation";
    case 'Y': return "Type";
    case 'I': return "Insert";
    case 'U': return "Update";
    case 'D': return "Delete";
    case 'T': return "Truncate";
    case 'M': return "Message";
    default: return "unknown";
  }
}

Message Decoder::decode(std::string_view bytes) {
  if (bytes.empty()) ByteReader(bytes, "pgoutput").fail("empty message");
  char type = bytes[0];
  std::string what = fmt::format("pgoutput {} ('{}')", messageTypeName(type),
                                 std::isprint(static_cast<unsigned char>(type)) ? type : '?');
  ByteReader r(bytes, what);
  r.readU8("message type");

  switch (type) {
    case 'B': {
      BeginMessage m;
      m.final_lsn = readLsn(r, "final_lsn");
      m.commit_time = r.readI64("commit timestamp");
      m.xid = Xid{r.readU32("xid")};
      r.expectEnd();
      return m;
    }
    case 'C': {
      CommitMessage m;
      m.flags = r.readU8("flags");
      if (m.flags != 0) r.fail(fmt::format("unknown commit flags 0x{:02x}", m.flags));
      m.commit_lsn = readLsn(r, "commit_lsn");
      m.end_lsn = readLsn(r, "end_lsn");
      m.commit_time = r.readI64("commit timestamp");
      r.expectEnd();
      if (m.end_lsn < m.commit_lsn) r.fail("end_lsn is before commit_lsn");
      return m;
    }
    case 'O': {
      OriginMessage m;
      m.origin_lsn = readLsn(r, "origin_lsn", true);
      m.origin_name = r.readCString("origin name");
      r.expectEnd();
      return m;
    }
    case 'R': {
      RelationMessage m;
      m.relid = readRelid(r);
      m.nspname = r.readCString("namespace");
      m.relname = r.readCString("relation name");
      m.replica_identity = static_cast<char>(r.readU8("replica identity"));
      if (m.replica_identity != 'd' && m.replica_identity != 'n' && m.replica_identity != 'f' &&
          m.replica_identity != 'i') {
        r.fail(fmt::format("unknown replica identity 0x{:02x}",
                           static_cast<unsigned char>(m.replica_identity)));
      }
      int16_t natts = r.readI16("column count");
      if (natts < 0) r.fail(fmt::format("negative column count {}", natts));
      m.columns.reserve(static_cast<size_t>(natts));
      for (int16_t i = 0; i < natts; ++i) {
        uint8_t flags = r.readU8("column flags");
        if ((flags & ~1u) != 0) r.fail(fmt::format("column {} has unknown flags 0x{:02x}", i, flags));
        RelationColumn c;
        c.part_of_key = (flags & 1u) != 0;
        c.name = r.readCString("column name");
        c.type = r.readU32("column type");
        c.typmod = r.readI32("column typmod");
        m.columns.push_back(c);
      }
      r.expectEnd();
      return m;
    }
    case 'Y': {
      TypeMessage m;
      m.type = r.readU32("type oid");
      m.nspname = r.readCString("type namespace");
      m.typname = r.readCString("type name");
      r.expectEnd();
      return m;
    }
    case 'I': {
      InsertMessage m;
      m.relid = readRelid(r);
      expectNewTupleMarker(r, static_cast<char>(r.readU8("new tuple marker")));
      readTuple(r, new_tuple_);
      r.expectEnd();
      m.new_tuple = &new_tuple_;
      return m;
    }
    case 'U': {
      UpdateMessage m;
      m.relid = readRelid(r);
      m.old_kind = OldTupleKind::None;
      m.old_tuple = nullptr;
      char marker = static_cast<char>(r.readU8("tuple marker"));
      if (marker == 'K' || marker == 'O') {
        m.old_kind = readOldKind(r, marker);
        readTuple(r, old_tuple_);
        m.old_tuple = &old_tuple_;
        marker = static_cast<char>(r.readU8("new tuple marker"));
      }
      expectNewTupleMarker(r, marker);
      readTuple(r, new_tuple_);
      r.expectEnd();
      m.new_tuple = &new_tuple_;
      return m;
    }
    case 'D': {
      DeleteMessage m;
      m.relid = readRelid(r);
      m.old_kind = readOldKind(r, static_cast<char>(r.readU8("old tuple marker")));
      readTuple(r, old_tuple_);
      r.expectEnd();
      m.old_tuple = &old_tuple_;
      return m;
    }
    case 'T': {
      TruncateMessage m;
      int32_t nrels = r.readI32("relation count");
      if (nrels <= 0) r.fail(fmt::format("relation count {} is not positive", nrels));
      uint8_t options = r.readU8("options");
      if ((options & ~3u) != 0) r.fail(fmt::format("unknown truncate options 0x{:02x}", options));
      m.cascade = (options & 1u) != 0;
      m.restart_identity = (options & 2u) != 0;
      // Check the count against the bytes left before reserving anything for it.
      if (static_cast<uint64_t>(nrels) * 4 > r.remaining()) {
        r.fail(fmt::format("{} relation ids want {} bytes, {} left", nrels,
                           static_cast<uint64_t>(nrels) * 4, r.remaining()));
      }
      m.relids.reserve(static_cast<size_t>(nrels));
      for (int32_t i = 0; i < nrels; ++i) m.relids.push_back(readRelid(r));
      r.expectEnd();
      return m;
    }
    case 'M': {
      LogicalDecodingMessage m;
      uint8_t flags = r.readU8("flags");
      if ((flags & ~1u) != 0) r.fail(fmt::format("unknown message flags 0x{:02x}", flags));
      m.transactional = (flags & 1u) != 0;
      m.lsn = readLsn(r, "lsn");
      m.prefix = r.readCString("prefix");
      int32_t len = r.readI32("content length");
      m.content = r.readBytes(len, "content");
      r.expectEnd();
      return m;
    }
    default:
      r.fail(fmt::format("unknown message type 0x{:02x}", static_cast<unsigned char>(type)));
  }
}

}  // namespace tidemark::pgoutput
