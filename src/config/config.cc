#include "config/config.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "base/error.h"
#include "config/settings.h"

namespace tidemark::config {

namespace {

// ---------------------------------------------------------------------------------------------
// Connection strings. libpq's own parser (conninfo_parse, conninfo_uri_parse in fe-connect.c)
// is mirrored here only as far as needed to find where a password lies, so that it can be
// masked, and to refuse strings whose password position is ambiguous.

struct Span {
  size_t begin;
  size_t end;
};

struct DsnScan {
  std::vector<Span> secrets;  // byte ranges of secret values in the original text
  std::string problem;        // empty when the text is well formed
  // On a problem, everything from here on may be part of a secret (e.g. a password that was
  // split by an unquoted space), so redaction drops it.
  size_t untrusted_from = std::string_view::npos;
};

constexpr std::string_view kUriPrefixes[] = {"postgresql://", "postgres://"};

bool isDsnSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return asciiLower(x) == asciiLower(y);
         });
}

// libpq keywords are case-sensitive, but masking "PASSWORD=" too costs nothing.
bool isSecretKeyword(std::string_view key) {
  return equalsIgnoreCase(key, "password") || equalsIgnoreCase(key, "sslpassword");
}

// A dbname that looks like a connection string may be expanded by libpq into further
// keywords, password included; such a value is masked whole.
bool mayBeNestedDsn(std::string_view key, std::string_view value) {
  return equalsIgnoreCase(key, "dbname") &&
         (value.find('=') != std::string_view::npos || value.find("://") != std::string_view::npos);
}

// libpq's connection keywords (PQconndefaults), for telling a misspelled one early.
const std::vector<std::string>& dsnKeywords() {
  static const std::vector<std::string> keywords = [] {
    std::vector<std::string> out;
    PQconninfoOption* options = PQconndefaults();
    for (PQconninfoOption* o = options; o != nullptr && o->keyword != nullptr; ++o) out.emplace_back(o->keyword);
    PQconninfoFree(options);
    return out;
  }();
  return keywords;
}

size_t editDistance(std::string_view a, std::string_view b);

// A keyword libpq does not know is a configuration error, not a server that is down: named,
// with the nearest known keyword. Keywords are never secret; their values may be.
std::string unknownKeyword(std::string_view key) {
  const auto& known = dsnKeywords();
  if (known.empty() || std::find(known.begin(), known.end(), key) != known.end()) return {};
  std::string nearest;
  size_t best = 3;
  for (const auto& k : known) {
    size_t d = editDistance(key, k);
    if (d < best) {
      best = d;
      nearest = k;
    }
  }
  std::string problem = fmt::format("has unknown keyword \"{}\"", key);
  if (!nearest.empty()) problem += fmt::format(" (did you mean \"{}\"?)", nearest);
  return problem;
}

DsnScan scanConninfo(std::string_view s) {
  DsnScan scan;
  size_t i = 0;
  auto skipSpace = [&] {
    while (i < s.size() && isDsnSpace(s[i])) {
      ++i;
    }
  };
  for (;;) {
    skipSpace();
    if (i >= s.size()) {
      break;
    }
    size_t key_begin = i;
    while (i < s.size() && !isDsnSpace(s[i]) && s[i] != '=') {
      ++i;
    }
    std::string_view key = s.substr(key_begin, i - key_begin);
    skipSpace();
    if (key.empty() || i >= s.size() || s[i] != '=') {
      scan.problem = key.empty() ? "has '=' without a keyword before it"
                                 : "has a word without '=' after it (a value with spaces must be "
                                   "in single quotes)";
      scan.untrusted_from = key_begin;
      return scan;
    }
    ++i;
    // libpq skips blanks after '=', so in "password= host=x" the password is "host=x".
    skipSpace();
    size_t value_begin = i;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        if (s[i] == '\\') {
          i += 2;
          continue;
        }
        if (s[i] == '\'') {
          ++i;
          closed = true;
          break;
        }
        ++i;
      }
      if (!closed) {
        scan.problem = "has an unterminated quoted value";
        scan.untrusted_from = value_begin;
        return scan;
      }
    } else {
      while (i < s.size() && !isDsnSpace(s[i])) {
        i += s[i] == '\\' ? 2 : 1;
      }
      i = std::min(i, s.size());
    }
    std::string_view value = s.substr(value_begin, i - value_begin);
    if (isSecretKeyword(key) || mayBeNestedDsn(key, value)) {
      scan.secrets.push_back({value_begin, i});
    }
    if (scan.problem.empty()) scan.problem = unknownKeyword(key);
  }
  return scan;
}

std::string percentDecode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = asciiLower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

DsnScan scanUri(std::string_view s, size_t prefix_len) {
  DsnScan scan;
  // libpq ends user:password at the first '@' or '/' after the scheme. A password with a raw
  // '@', '/' or '?' is therefore misread, and a message must not show the misread pieces:
  // masking from the first ':' to the last '@' hides it whichever way it was meant. Strings
  // where the two readings differ are refused, so that valid ones are masked exactly.
  size_t last_at = s.rfind('@');
  bool has_at = last_at != std::string_view::npos && last_at >= prefix_len;
  if (has_at) {
    size_t colon = s.find(':', prefix_len);
    if (colon != std::string_view::npos && colon < last_at) {
      scan.secrets.push_back({colon + 1, last_at});
    }
    size_t userinfo_end = s.find_first_of("@/", prefix_len);
    if (userinfo_end != last_at) {
      scan.problem =
          "has '@' after the host or more than one '@' (in a user name, password or value, "
          "write '@' as %40, '/' as %2F and '?' as %3F)";
    }
  }
  size_t query = s.find('?', has_at ? last_at + 1 : prefix_len);
  if (query == std::string_view::npos) {
    return scan;
  }
  size_t pos = query + 1;
  while (pos < s.size()) {
    size_t amp = s.find('&', pos);
    if (amp == std::string_view::npos) {
      amp = s.size();
    }
    std::string_view param = s.substr(pos, amp - pos);
    size_t eq = param.find('=');
    if (eq == std::string_view::npos) {
      scan.problem = "has a query parameter without '=' (write '&' in a value as %26)";
      scan.untrusted_from = pos;
      return scan;
    }
    const std::string key = percentDecode(param.substr(0, eq));
    if (isSecretKeyword(key)) {
      scan.secrets.push_back({pos + eq + 1, amp});
    }
    if (scan.problem.empty()) scan.problem = unknownKeyword(key);
    pos = amp + 1;
  }
  return scan;
}

DsnScan scanDsn(std::string_view s) {
  for (std::string_view prefix : kUriPrefixes) {
    if (s.substr(0, prefix.size()) == prefix) {
      return scanUri(s, prefix.size());
    }
  }
  return scanConninfo(s);
}

// ---------------------------------------------------------------------------------------------
// The loader.

constexpr int kNoLine = -1;

std::optional<std::string> readWholeFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return std::nullopt;
  }
  return std::move(text).str();
}

std::string nodeKind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// A non-secret value as it appears in a message: quoted, control characters escaped, cut
// when long, so a message stays one readable line.
std::string shown(std::string_view value) {
  constexpr size_t kMaxShown = 80;
  std::string out = "'";
  for (size_t i = 0; i < value.size() && i < kMaxShown; ++i) {
    char c = value[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
  if (value.size() > kMaxShown) {
    out += "...";
  }
  out += "'";
  return out;
}

// The key path of a setting, split at its last '.': parent "sinks[]" and name "kind".
std::string_view parentOf(std::string_view path) {
  size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? std::string_view{} : path.substr(0, dot);
}

std::string_view leafOf(std::string_view path) {
  size_t dot = path.rfind('.');
  return dot == std::string_view::npos ? path : path.substr(dot + 1);
}

std::vector<const Setting*> childrenOf(std::string_view table_path) {
  std::vector<const Setting*> out;
  for (const Setting& setting : allSettings()) {
    if (parentOf(setting.path) == table_path) {
      out.push_back(&setting);
    }
  }
  return out;
}

std::string knownKeys(std::string_view table_path) {
  std::string out;
  for (const Setting* setting : childrenOf(table_path)) {
    if (!out.empty()) {
      out += ", ";
    }
    out += leafOf(setting->path);
  }
  return out;
}

std::string joinAllowed(const Setting& setting) {
  std::string out;
  for (std::string_view value : setting.allowed) {
    if (!out.empty()) {
      out += ", ";
    }
    out += value;
  }
  return out;
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (asciiLower(a[i - 1]) == asciiLower(b[j - 1]) ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string expectedText(const Setting& setting) {
  switch (setting.type) {
    case SettingType::Mapping:
      return fmt::format("a mapping with keys {}", knownKeys(setting.path));
    case SettingType::List:
      return fmt::format("a list of mappings with keys {}",
                         knownKeys(fmt::format("{}[]", setting.path)));
    case SettingType::String:
      return "a string";
    case SettingType::Bool:
      return "true or false";
    case SettingType::Duration:
      return "a duration such as 10s";
    case SettingType::Size:
      return "a size such as 64MiB";
    case SettingType::Path:
      return "a path";
    case SettingType::Enum:
      return fmt::format("one of {}", joinAllowed(setting));
    case SettingType::TableList:
      return "a list of table names";
    case SettingType::TopicMap:
      return "a mapping from table names to topic names";
  }
  return "a value";
}

constexpr std::string_view kDurationHint = "write a whole number and a unit: 500ms, 10s, 1m, 2h";
constexpr std::string_view kSizeHint =
    "write a whole number and a unit: 512KiB, 64MiB, 1GiB, or a number of bytes";
constexpr std::string_view kTableHint =
    "write schema.table or table (schema public); double-quote names with upper case or special "
    "characters, e.g. '\"My Schema\".\"Orders\"'";

std::string formatMilliseconds(uint64_t ms) {
  return formatDuration(std::chrono::milliseconds(static_cast<int64_t>(ms)));
}

class Loader {
 public:
  Loader(std::string origin, std::filesystem::path base_dir, Secrets secrets)
      : origin_(std::move(origin)), base_dir_(std::move(base_dir)), secrets_(secrets) {}

  PipelineConfig load(const std::string& yaml) {
    std::vector<YAML::Node> documents;
    try {
      documents = YAML::LoadAll(yaml);
    } catch (const YAML::Exception& e) {
      // Some yaml-cpp messages end with the offending text ("unknown escape character: x"),
      // which may be part of a password; only the part before it is kept.
      std::string message = e.msg.substr(0, e.msg.find(": "));
      throw Error(ErrorClass::Config,
                  fmt::format("{}: not valid YAML at line {}, column {}: {}", origin_,
                              e.mark.line + 1, e.mark.column + 1, message),
                  yamlHint(yaml, e.mark.line));
    }
    if (documents.size() > 1) {
      fail("", kNoLine,
           fmt::format("holds {} YAML documents; a pipeline file holds one", documents.size()),
           "remove the '---' separators, or split the file");
    }
    if (documents.empty() || documents[0].IsNull()) {
      fail("", kNoLine, fmt::format("is empty; expected a mapping with keys {}", knownKeys("")));
    }
    collect([&] { readMapping(documents[0], "", "", kNoLine); });
    collect([&] { finish(); });
    if (errors_.size() == 1) throw errors_.front();
    if (!errors_.empty()) {
      // Every problem at once, so that one edit fixes the file.
      std::string message = fmt::format("{}: {} problems:", origin_, errors_.size());
      std::string hint;
      for (const Error& e : errors_) {
        message += fmt::format("\n  {}", e.what());
        if (!e.hint().empty() && hint.find(e.hint()) == std::string::npos) {
          hint += (hint.empty() ? "" : "\n") + e.hint();
        }
      }
      throw Error(ErrorClass::Config, std::move(message), std::move(hint));
    }
    return std::move(config_);
  }

 private:
  // Runs `step`, recording a configuration error it throws instead of stopping: the loader
  // reports every problem of a file, not just the first.
  template <class F>
  void collect(F&& step) {
    try {
      step();
    } catch (const Error& e) {
      if (e.errorClass() != ErrorClass::Config) throw;
      errors_.push_back(e);
    }
  }

  // A table name such as "Sales"."Order Items" is not one YAML scalar: in a flow list it must
  // be single-quoted whole.
  static std::string yamlHint(const std::string& yaml, int line) {
    std::istringstream in(yaml);
    std::string text;
    for (int i = 0; i <= line && std::getline(in, text); ++i) {
    }
    const size_t quote = text.find('"');
    if (quote != std::string::npos && text.find("\".", quote + 1) != std::string::npos) {
      return "a double-quoted table name such as \"Sales\".\"Order Items\" is not one YAML value: "
             "wrap it whole in single quotes, tables: [public.a, '\"Sales\".\"Order Items\"']";
    }
    return "check the indentation and quoting around that line";
  }

  [[noreturn]] void fail(std::string_view path, int line, std::string problem,
                         std::string_view hint = {}) const {
    std::string message = path.empty() ? fmt::format("{}: {}", origin_, problem)
                                       : fmt::format("{}: {}: {}", origin_, path, problem);
    if (line >= 0) {
      message += fmt::format(" (line {})", line + 1);
    }
    throw Error(ErrorClass::Config, std::move(message), std::string(hint));
  }

  int lineOf(const std::string& path) const {
    auto it = lines_.find(path);
    return it == lines_.end() ? kNoLine : it->second;
  }

  static std::string join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
  }

  void readMapping(const YAML::Node& node, const std::string& path, const std::string& table_path,
                   int line) {
    // "delivery:" with every setting commented out is an empty section, not an error.
    bool empty_section = node.IsNull() && !table_path.ends_with("[]");
    if (!node.IsMap() && !empty_section) {
      fail(path, line,
           fmt::format("expected a mapping with keys {}, got {}", knownKeys(table_path),
                       nodeKind(node)));
    }
    std::map<std::string, int> seen;
    if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        // Copies: the iterator's pair is a temporary, and a Node is a cheap handle.
        const YAML::Node key = it->first;
        const YAML::Node value = it->second;
        int key_line = key.Mark().line;
        if (!key.IsScalar()) {
          fail(path, key_line, fmt::format("keys must be names, got {} as a key", nodeKind(key)));
        }
        const std::string& name = key.Scalar();
        std::string child_path = join(path, name);
        auto [first, inserted] = seen.emplace(name, key_line);
        if (!inserted) {
          fail(child_path, key_line,
               fmt::format("duplicate key (first at line {})", first->second + 1),
               "remove one of them");
        }
        collect([&] {
          const Setting* setting = nullptr;
          // A dotted key ("source.dsn:" at the top level) would otherwise match a nested row.
          if (name.find_first_of(".[]") == std::string::npos) {
            setting = findSetting(join(table_path, name));
          }
          if (setting == nullptr) {
            unknownKey(name, child_path, table_path, key_line);
          }
          lines_[child_path] = key_line;
          switch (setting->type) {
            case SettingType::Mapping:
              readMapping(value, child_path, std::string(setting->path), key_line);
              break;
            case SettingType::List:
              readList(*setting, value, child_path, key_line);
              break;
            default:
              setting->store(target_, readValue(*setting, value, child_path, key_line));
              break;
          }
        });
      }
    }
    for (const Setting* child : childrenOf(table_path)) {
      std::string_view leaf = leafOf(child->path);
      if (child->required && !seen.contains(std::string(leaf))) {
        std::string where = path.empty() ? "at the top level" : fmt::format("under {}", path);
        collect([&] {
          fail(join(path, leaf), line, "required key is missing",
               fmt::format("add {}: {} (see docs/CONFIGURATION.md)", leaf, where));
        });
      }
    }
  }

  [[noreturn]] void unknownKey(const std::string& name, const std::string& path,
                               const std::string& table_path, int line) const {
    std::string hint;
    if (name.find('.') != std::string::npos) {
      hint = "write nested settings as nested mappings, not dotted keys";
    } else {
      size_t best = 3;
      for (const Setting* child : childrenOf(table_path)) {
        size_t distance = editDistance(name, leafOf(child->path));
        if (distance < best) {
          best = distance;
          hint = fmt::format("did you mean {}?", leafOf(child->path));
        }
      }
    }
    fail(path, line, fmt::format("unknown key; known keys: {}", knownKeys(table_path)), hint);
  }

  void readList(const Setting& setting, const YAML::Node& node, const std::string& path, int line) {
    if (!node.IsSequence()) {
      fail(path, line, fmt::format("expected {}, got {}", expectedText(setting), nodeKind(node)));
    }
    if (node.size() == 0) {
      fail(path, line, "at least one entry is required");
    }
    std::string element_table = fmt::format("{}[]", setting.path);
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node element = node[i];
      std::string element_path = fmt::format("{}[{}]", path, i);
      int element_line = element.Mark().line >= 0 ? element.Mark().line : line;
      lines_[element_path] = element_line;
      setting.store(target_, {});
      readMapping(element, element_path, element_table, element_line);
    }
  }

  // A scalar as written in the file and after ${...} expansion.
  struct Scalar {
    std::string written;
    std::string text;
  };

  // How a value that failed a check is named in a message: never for a secret, and as written
  // in the file when it came from the environment, whose values may be credentials.
  static std::string subject(const Setting& setting, const Scalar& value) {
    if (setting.secret) {
      return "the value (not shown: it may hold a secret)";
    }
    if (value.written != value.text) {
      return fmt::format("the value of {}", shown(value.written));
    }
    return shown(value.text);
  }

  Scalar scalar(const Setting& setting, const YAML::Node& node, const std::string& path,
                int line) const {
    if (!node.IsScalar()) {
      fail(path, line, fmt::format("expected {}, got {}", expectedText(setting), nodeKind(node)));
    }
    return {node.Scalar(), expand(node.Scalar(), setting, path, line)};
  }

  // "${NAME}" becomes the environment variable's value; "$${" is a literal "${".
  std::string expand(std::string_view text, const Setting& setting, const std::string& path,
                     int line) const {
    std::string out;
    size_t i = 0;
    while (i < text.size()) {
      if (text.substr(i, 3) == "$${") {
        out += "${";
        i += 3;
        continue;
      }
      if (text.substr(i, 2) != "${") {
        out += text[i++];
        continue;
      }
      size_t close = text.find('}', i + 2);
      if (close == std::string_view::npos) {
        fail(path, line, "has '${' without a closing '}'", "write $${ for a literal ${");
      }
      std::string_view name = text.substr(i + 2, close - i - 2);
      bool valid = !name.empty() && !(name[0] >= '0' && name[0] <= '9') &&
                   std::all_of(name.begin(), name.end(), [](char c) {
                     return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '_';
                   });
      if (!valid) {
        fail(path, line,
             setting.secret
                 ? std::string("has an invalid environment variable name in ${...}")
                 : fmt::format("{} is not a valid environment variable name", shown(name)),
             "names are letters, digits and '_'; write $${ for a literal ${");
      }
      const char* value = std::getenv(std::string(name).c_str());
      if (value == nullptr && setting.secret && secrets_ == Secrets::Optional) {
        value = "";
      }
      if (value == nullptr) {
        fail(path, line, fmt::format("environment variable {} is not set", name),
             fmt::format("set {} before starting tidemark, or write $${{ for a literal ${{", name));
      }
      out += value;
      i = close + 1;
    }
    return out;
  }

  std::filesystem::path resolve(const std::string& text, const std::string& path, int line) const {
    if (text.starts_with("~")) {
      fail(path, line, fmt::format("{}: '~' is not expanded", shown(text)),
           "write ${HOME}/... or an absolute path");
    }
    std::filesystem::path p(text);
    if (p.is_relative()) {
      p = base_dir_ / p;
    }
    p = p.lexically_normal();
    // "out/" and "out" name one directory; comparing sinks' paths relies on one spelling.
    if (!p.has_filename() && p.has_relative_path()) {
      p = p.parent_path();
    }
    return p;
  }

  [[noreturn]] void invalid(const Setting& setting, const Scalar& value, const std::string& path,
                            int line, std::string_view problem, std::string_view hint = {}) const {
    fail(path, line, fmt::format("{} {}", subject(setting, value), problem),
         hint.empty() ? setting.hint : hint);
  }

  // Bounds of Duration (milliseconds) and Size (bytes) settings; `format` prints a bound.
  void checkRange(const Setting& setting, uint64_t number, std::string (*format)(uint64_t),
                  const Scalar& value, const std::string& path, int line) const {
    bool low = number < setting.min;
    if (low || (setting.max != 0 && number > setting.max)) {
      invalid(setting, value, path, line,
              fmt::format("is {} {}", low ? "below the minimum" : "above the maximum",
                          format(low ? setting.min : setting.max)),
              fmt::format("use a value from {} to {}", format(setting.min), format(setting.max)));
    }
  }

  SettingValue readValue(const Setting& setting, const YAML::Node& node, const std::string& path,
                         int line) {
    if (setting.type == SettingType::TableList) {
      return readTables(setting, node, path, line);
    }
    if (setting.type == SettingType::TopicMap) {
      return readTopics(setting, node, path, line);
    }
    const Scalar value = scalar(setting, node, path, line);
    const std::string& text = value.text;
    // A secret the environment does not hold, for a command that can do without it.
    if (text.empty() && setting.secret && secrets_ == Secrets::Optional) return text;
    if (text.empty() && setting.type != SettingType::Bool) {
      fail(path, line, "must not be empty", setting.hint);
    }
    switch (setting.type) {
      case SettingType::String:
        if (setting.check != nullptr) {
          if (std::string problem = setting.check(text); !problem.empty()) {
            invalid(setting, value, path, line, problem);
          }
        }
        return text;
      case SettingType::Path:
        return resolve(text, path, line);
      case SettingType::Enum:
        if (std::find(setting.allowed.begin(), setting.allowed.end(), text) ==
            setting.allowed.end()) {
          invalid(setting, value, path, line,
                  fmt::format("is not one of {}", joinAllowed(setting)));
        }
        return text;
      case SettingType::Bool:
        // YAML 1.2's core schema; "yes"/"on" are YAML 1.1 and read differently by other tools.
        if (text == "true" || text == "True" || text == "TRUE") {
          return true;
        }
        if (text == "false" || text == "False" || text == "FALSE") {
          return false;
        }
        fail(path, line, fmt::format("expected true or false, got {}", subject(setting, value)));
      case SettingType::Duration: {
        Parsed<std::chrono::milliseconds> parsed = parseDuration(text);
        if (!parsed.value) {
          invalid(setting, value, path, line, parsed.problem, kDurationHint);
        }
        checkRange(setting, static_cast<uint64_t>(parsed.value->count()), formatMilliseconds, value,
                   path, line);
        return *parsed.value;
      }
      case SettingType::Size: {
        Parsed<uint64_t> parsed = parseSize(text);
        if (!parsed.value) {
          invalid(setting, value, path, line, parsed.problem, kSizeHint);
        }
        checkRange(setting, *parsed.value, formatSize, value, path, line);
        return *parsed.value;
      }
      case SettingType::Mapping:
      case SettingType::List:
      case SettingType::TableList:
      case SettingType::TopicMap:
        break;
    }
    fail(path, line, "internal error: no reader for this setting's type");
  }

  // A table name read from a scalar: a list element or a mapping key.
  TableName readTableName(const Setting& setting, const YAML::Node& node, const std::string& path,
                          int line) const {
    if (!node.IsScalar()) {
      fail(path, line, fmt::format("expected a table name, got {}", nodeKind(node)), kTableHint);
    }
    const Scalar value{node.Scalar(), expand(node.Scalar(), setting, path, line)};
    Parsed<TableName> parsed = parseTableName(value.text);
    if (!parsed.value) {
      fail(path, line,
           fmt::format("{} is not a valid table name: it {}", subject(setting, value), parsed.problem),
           kTableHint);
    }
    return std::move(*parsed.value);
  }

  SettingValue readTopics(const Setting& setting, const YAML::Node& node, const std::string& path,
                          int line) {
    if (!node.IsMap()) {
      fail(path, line, fmt::format("expected {}, got {}", expectedText(setting), nodeKind(node)),
           "write topics: {public.orders: shop.orders}");
    }
    TopicList topics;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;
      const YAML::Node value = it->second;
      const int key_line = key.Mark().line >= 0 ? key.Mark().line : line;
      const std::string key_path = fmt::format("{}[{}]", path, key.IsScalar() ? shown(key.Scalar()) : "?");
      TableName table = readTableName(setting, key, key_path, key_line);
      for (const auto& [seen, topic] : topics) {
        if (seen == table) {
          fail(key_path, key_line, fmt::format("{} has two topics", shown(table.str())),
               "keep one entry per table; unquoted names are folded to lower case");
        }
      }
      const Scalar topic = scalar(setting, value, key_path, key_line);
      if (std::string problem = topicProblem(topic.text); !problem.empty()) {
        fail(key_path, key_line, fmt::format("topic {} {}", subject(setting, topic), problem));
      }
      lines_[key_path] = key_line;
      topics.emplace_back(std::move(table), topic.text);
    }
    return topics;
  }

  SettingValue readTables(const Setting& setting, const YAML::Node& node, const std::string& path,
                          int line) {
    if (!node.IsSequence()) {
      fail(path, line, fmt::format("expected {}, got {}", expectedText(setting), nodeKind(node)),
           "write tables: [public.orders, public.customers]");
    }
    if (node.size() == 0) {
      fail(path, line, "at least one table is required",
           "write tables: [public.orders, public.customers]");
    }
    std::vector<TableName> tables;
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node element = node[i];
      std::string element_path = fmt::format("{}[{}]", path, i);
      int element_line = element.Mark().line >= 0 ? element.Mark().line : line;
      TableName table = readTableName(setting, element, element_path, element_line);
      auto same = std::find(tables.begin(), tables.end(), table);
      if (same != tables.end()) {
        fail(element_path, element_line,
             fmt::format("{} is listed twice (also {}[{}])", shown(table.str()), path,
                         same - tables.begin()),
             "remove one of them; unquoted names are folded to lower case");
      }
      tables.push_back(std::move(table));
    }
    return tables;
  }

  std::string readPasswordFile(const std::filesystem::path& file) const {
    const std::string path = "source.password_file";
    const int line = lineOf(path);
    std::error_code ec;
    std::filesystem::file_status status = std::filesystem::status(file, ec);
    if (ec) {
      fail(path, line, fmt::format("cannot read {}: {}", file.string(), ec.message()),
           "point password_file at a file readable by the tidemark user");
    }
    if (!std::filesystem::is_regular_file(status)) {
      fail(path, line, fmt::format("{} is not a regular file", file.string()));
    }
    std::optional<std::string> read = readWholeFile(file);
    if (!read) {
      fail(path, line, fmt::format("cannot read {}", file.string()),
           "point password_file at a file readable by the tidemark user");
    }
    std::string content = std::move(*read);
    // Editors end a file with a newline; the password is the line before it.
    if (content.ends_with('\n')) {
      content.pop_back();
      if (content.ends_with('\r')) {
        content.pop_back();
      }
    }
    if (content.empty()) {
      fail(path, line, fmt::format("{} is empty", file.string()));
    }
    if (content.find_first_of(std::string_view("\n\r\0", 3)) != std::string::npos) {
      fail(path, line,
           fmt::format("{} holds more than one line or a NUL byte; a password is one line",
                       file.string()));
    }
    return content;
  }

  // Rules that span settings, and defaults derived from other settings.
  void finish() {
    PipelineConfig& c = config_;
    if (c.topic_prefix.empty()) {
      c.topic_prefix = c.name;
    }
    if (c.state_dir.empty()) {
      c.state_dir = (base_dir_ / (c.name + ".state")).lexically_normal();
    }
    if (target_.password_file) {
      if (c.source.password) {
        fail("source.password_file", lineOf("source.password_file"),
             "cannot be used together with source.password", "keep one of them");
      }
      if (secrets_ == Secrets::Required) {
        c.source.password = readPasswordFile(*target_.password_file);
      } else {
        try {
          c.source.password = readPasswordFile(*target_.password_file);
        } catch (const Error&) {
          // Not readable by this user: the command goes on without it.
        }
      }
    }
    const HeartbeatConfig& hb = c.heartbeat;
    if (hb.mode == "query" && hb.query.empty()) {
      fail("heartbeat.query", lineOf("heartbeat.mode"), "required when heartbeat.mode is query",
           "add query: the statement to run every interval, e.g. "
           "UPDATE app.heartbeat SET ts = now()");
    }
    if (hb.mode != "query" && !hb.query.empty()) {
      fail("heartbeat.query", lineOf("heartbeat.query"), "only used when heartbeat.mode is query",
           "set heartbeat.mode: query, or remove heartbeat.query");
    }
    if (c.source.read_only && (hb.mode == "message" || hb.mode == "query")) {
      fail("heartbeat.mode", lineOf("heartbeat.mode"),
           fmt::format("mode {} writes to the source, which source.read_only forbids", hb.mode),
           "use heartbeat.mode: table with a scheduled job on the primary writing the table "
           "(tidemark setup prints the pg_cron job), or off");
    }
    const auto listen = splitListen(c.http.listen);
    if (listen && !c.http.token && !listen->loopback()) {
      fail("http.token", lineOf("http.listen"),
           fmt::format("required when http.listen is not a loopback address ({})", listen->host),
           "set http.token: ${TIDEMARK_HTTP_TOKEN}, or listen on 127.0.0.1");
    }
    for (const TableName& t : c.source.tables) {
      if (t == c.signal.table) {
        fail("source.tables", lineOf("source.tables"),
             fmt::format("{} is the signal table", shown(t.str())), "remove it from source.tables");
      }
      if (t == hb.table && hb.mode != "off") {
        fail("source.tables", lineOf("source.tables"),
             fmt::format("{} is the heartbeat table", shown(t.str())),
             "capture it as data with heartbeat.deliver: true instead of listing it");
      }
    }
    for (const auto& [table, topic] : c.source.topics) {
      if (std::find(c.source.tables.begin(), c.source.tables.end(), table) == c.source.tables.end()) {
        fail(fmt::format("source.topics[{}]", shown(table.str())), lineOf("source.topics"),
             "is not one of source.tables", "list the table in source.tables, or remove its topic");
      }
    }
    checkTopicsDistinct();
    for (size_t i = 0; i < c.sinks.size(); ++i) {
      const SinkConfig& sink = c.sinks[i];
      std::string element = fmt::format("sinks[{}]", i);
      if (sink.kind == "jsonl" && sink.path.empty()) {
        fail(element + ".path", lineOf(element), "required for kind jsonl",
             "add path: a directory for the <topic>.jsonl files, e.g. path: ./out");
      }
      if (sink.kind == "stdout" && !sink.path.empty()) {
        fail(element + ".path", lineOf(element + ".path"), "not allowed for kind stdout",
             "remove path, or use kind: jsonl");
      }
      if (sink.kind == "postgres") {
        if (sink.dsn.empty()) {
          fail(element + ".dsn", lineOf(element), "required for kind postgres",
               "add dsn: the destination database, e.g. dsn: \"host=dw dbname=replica user=tidemark\"");
        }
        if (!sink.path.empty()) {
          fail(element + ".path", lineOf(element + ".path"), "not allowed for kind postgres",
               "remove path: the destination is the database of dsn");
        }
        if (sink.soft_delete && sink.mode != "upsert") {
          fail(element + ".soft_delete", lineOf(element + ".soft_delete"), "only for mode upsert",
               "remove soft_delete: append mode keeps every delete as a row with __op d");
        }
      } else {
        for (const char* key : {"dsn", "mode", "schema", "soft_delete", "truncate"}) {
          if (lines_.count(element + "." + key) != 0) {
            fail(element + "." + key, lineOf(element + "." + key),
                 fmt::format("only for kind postgres, not {}", sink.kind), fmt::format("remove {}", key));
          }
        }
      }
      for (size_t j = 0; j < i; ++j) {
        if (c.sinks[j].name == sink.name) {
          fail(element + ".name", lineOf(element + ".name"),
               fmt::format("{} is also the name of sinks[{}]", shown(sink.name), j),
               "give each sink a unique name");
        }
        if (!sink.path.empty() && c.sinks[j].path == sink.path) {
          fail(element + ".path", lineOf(element + ".path"),
               fmt::format("{} is also the path of sinks[{}]", shown(sink.path.string()), j),
               "give each jsonl sink its own directory; two sinks would write the same files");
        }
      }
    }
  }

  // Two tables on one topic would mix their rows under one key space (and one jsonl file).
  // Names differing only in characters the sanitizer replaces collide, as do tables whose
  // topic is set to another's.
  void checkTopicsDistinct() const {
    const PipelineConfig& c = config_;
    std::vector<std::pair<std::string, std::string>> used;  // topic, what writes it
    auto claim = [&](std::string topic, std::string what) {
      for (const auto& [other_topic, other] : used) {
        if (other_topic != topic) continue;
        fail("source.topics", lineOf(c.source.topics.empty() ? "source.tables" : "source.topics"),
             fmt::format("{} and {} would both write topic {}", other, what, shown(topic)),
             "give one of them a topic of its own under source.topics, e.g. topics: {'<table>': "
             "<prefix>.<schema>.<new name>}");
      }
      used.emplace_back(std::move(topic), std::move(what));
    };
    for (const TableName& t : c.source.tables) claim(tableTopic(c, t), fmt::format("table {}", shown(t.str())));
    claim(sanitizeTopic(c.topic_prefix + ".message"), "logical decoding messages");
    claim(sanitizeTopic("__debezium-heartbeat." + c.topic_prefix), "heartbeat events");
    if (c.heartbeat.deliver && c.heartbeat.mode == "table") {
      claim(sanitizeTopic(fmt::format("{}.{}.{}", c.topic_prefix, c.heartbeat.table.schema,
                                      c.heartbeat.table.table)),
            fmt::format("heartbeat table {}", shown(c.heartbeat.table.str())));
    }
  }

  std::string origin_;
  std::filesystem::path base_dir_;
  Secrets secrets_;
  std::vector<Error> errors_;
  PipelineConfig config_;
  SettingTarget target_{config_};
  std::map<std::string, int> lines_;  // key path -> line of the key, for cross-setting errors
};

// ---------------------------------------------------------------------------------------------
// The reference.

std::string typeText(const Setting& setting) {
  switch (setting.type) {
    case SettingType::Mapping:
      return "section";
    case SettingType::List:
      return "list of sections";
    case SettingType::String:
      return setting.secret ? "string, secret" : "string";
    case SettingType::Bool:
      return "bool";
    case SettingType::Duration:
      return fmt::format("duration, {} to {}", formatMilliseconds(setting.min),
                         formatMilliseconds(setting.max));
    case SettingType::Size:
      return fmt::format("size, {} to {}", formatSize(setting.min), formatSize(setting.max));
    case SettingType::Path:
      return "path";
    case SettingType::Enum: {
      std::string out = "one of";
      for (size_t i = 0; i < setting.allowed.size(); ++i) {
        out += fmt::format("{} `{}`", i == 0 ? "" : ",", setting.allowed[i]);
      }
      return out;
    }
    case SettingType::TableList:
      return "list of table names";
    case SettingType::TopicMap:
      return "mapping of table names to topics";
  }
  return "";
}

std::string defaultText(const Setting& setting) {
  if (setting.required) {
    return "required";
  }
  if (!setting.default_text.empty()) {
    return std::string(setting.default_text);
  }
  if (setting.show != nullptr) {
    return setting.show(PipelineConfig{}, SinkConfig{});
  }
  return "none";
}

// Markdown table cells end at '|'.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string dsnProblem(std::string_view dsn) {
  if (std::all_of(dsn.begin(), dsn.end(), isDsnSpace)) {
    return "is empty";
  }
  return scanDsn(dsn).problem;
}

std::string redactDsn(const std::string& dsn) {
  DsnScan scan = scanDsn(dsn);
  std::sort(scan.secrets.begin(), scan.secrets.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  size_t end = std::min(scan.untrusted_from, dsn.size());
  std::string out;
  size_t pos = 0;
  for (const Span& span : scan.secrets) {
    if (span.begin >= end) {
      break;
    }
    out.append(dsn, pos, span.begin - pos);
    out += "***";
    pos = std::min(span.end, end);
  }
  out.append(dsn, pos, end - pos);
  if (scan.untrusted_from != std::string_view::npos) {
    out += "***";
  }
  return out;
}

std::optional<ListenAddress> splitListen(std::string_view listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == listen.size()) return std::nullopt;
  ListenAddress a{std::string(listen.substr(0, colon)), std::string(listen.substr(colon + 1))};
  for (char c : a.port) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return a;
}

bool ListenAddress::loopback() const {
  return host == "localhost" || host == "[::1]" || host == "::1" || host.starts_with("127.");
}

std::string sanitizeTopic(std::string_view topic) {
  // Debezium replaces each UTF-16 code unit outside the set, so a character of the Basic
  // Multilingual Plane (1 to 3 UTF-8 bytes) becomes one '_' and any other (4 bytes, a surrogate
  // pair in Java) two. A byte that starts no valid sequence becomes one '_', as the U+FFFD a
  // Java decoder puts in its place.
  auto continuation = [&](size_t i) {
    return i < topic.size() && (static_cast<unsigned char>(topic[i]) & 0xC0) == 0x80;
  };
  std::string out;
  out.reserve(topic.size());
  for (size_t i = 0; i < topic.size();) {
    const char c = topic[i];
    const auto byte = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
        c == '_' || c == '-') {
      out += c;
      ++i;
      continue;
    }
    size_t length = byte < 0x80 ? 1 : byte >= 0xC2 && byte < 0xE0 ? 2
                                  : byte >= 0xE0 && byte < 0xF0 ? 3
                                  : byte >= 0xF0 && byte < 0xF5 ? 4
                                                                : 1;
    for (size_t k = 1; k < length; ++k) {
      if (!continuation(i + k)) length = 1;
    }
    out.append(length == 4 ? 2 : 1, '_');
    i += length;
  }
  return out;
}

std::string tableTopic(const PipelineConfig& cfg, const TableName& table) {
  for (const auto& [t, topic] : cfg.source.topics) {
    if (t == table) return topic;
  }
  return sanitizeTopic(fmt::format("{}.{}.{}", cfg.topic_prefix, table.schema, table.table));
}

PipelineConfig loadString(const std::string& yaml, const std::string& origin,
                          const std::filesystem::path& base_dir, Secrets secrets) {
  return Loader(origin, base_dir, secrets).load(yaml);
}

PipelineConfig loadFile(const std::filesystem::path& file, Secrets secrets) {
  errno = 0;
  std::optional<std::string> text = readWholeFile(file);
  if (!text) {
    int err = errno;
    throw Error(ErrorClass::Config,
                fmt::format("{}: cannot read the configuration file{}", file.string(),
                            err != 0 ? ": " + std::generic_category().message(err) : ""),
                "pass an existing pipeline file with -c FILE");
  }
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(file, ec);
  std::filesystem::path base_dir = (ec ? file : absolute).parent_path();
  return loadString(*text, file.string(), base_dir, secrets);
}

std::string referenceMarkdown() {
  std::string out;
  out += "# Configuration reference\n\n";
  out +=
      "<!-- Generated by referenceMarkdown() from src/config/settings.cc; edit the table "
      "there, not this file. -->\n\n";
  out +=
      "A pipeline is one YAML file, passed with `-c FILE`. The file is strict: an unknown "
      "key, a value of the wrong type or out of bounds, or a missing required key stops "
      "tidemark with exit code 1 and a message that names the key path, e.g. "
      "`sinks[1].path`.\n\n";

  // Sections in table order, the top level first.
  std::vector<std::string> groups = {""};
  for (const Setting& setting : allSettings()) {
    if (setting.type == SettingType::Mapping) {
      groups.emplace_back(setting.path);
    } else if (setting.type == SettingType::List) {
      groups.push_back(fmt::format("{}[]", setting.path));
    }
  }
  for (const std::string& group : groups) {
    if (group.empty()) {
      out += "## Top level\n\n";
    } else {
      const Setting* section =
          findSetting(group.ends_with("[]") ? group.substr(0, group.size() - 2) : group);
      out += fmt::format("## `{}`\n\n", group);
      out += fmt::format("{}{}\n\n", section->description, section->required ? " Required." : "");
    }
    out += "| Key | Type | Default | Description |\n";
    out += "|---|---|---|---|\n";
    for (const Setting* setting : childrenOf(group)) {
      if (setting->type == SettingType::Mapping || setting->type == SettingType::List) {
        continue;
      }
      out += fmt::format("| `{}` | {} | {} | {} |\n", setting->path, cell(typeText(*setting)),
                         cell(defaultText(*setting)), cell(setting->description));
    }
    out += "\n";
  }

  out += "## Values from the environment\n\n";
  out +=
      "`${NAME}` anywhere in a value is replaced by the environment variable `NAME` (letters, "
      "digits and `_`). An unset variable is an error that names the variable and the key. "
      "`$${` is a literal `${`. Keys are not expanded.\n\n";

  out += "## Secrets\n\n";
  out +=
      "`source.password`, `source.password_file` and a password inside `source.dsn` "
      "(`password=...` or `postgres://user:password@host/db`) are secrets. They are never "
      "printed: not in error messages, logs, metrics or echoed configuration, where a dsn "
      "appears as `password=***` or `postgres://user:***@host/db`. Keep them out of the file: "
      "write `password: ${PGPASSWORD}`, or point `password_file` at a file readable only by "
      "the tidemark user.\n\n";

  out += "## Value formats\n\n";
  out +=
      "- Durations: a whole number and a unit, `ms`, `s`, `m` or `h`: `500ms`, `10s`, `1m`, "
      "`2h`. A number without a unit is refused.\n";
  out +=
      "- Sizes: a whole number and a unit, `B`, `KiB`, `MiB`, `GiB` or `TiB` (powers of "
      "1024), or a plain number of bytes: `512KiB`, `64MiB`, `1GiB`.\n";
  out += "- Booleans: `true` or `false`.\n";
  out +=
      "- Table names: `schema.table`, or `table` for schema `public`. As in PostgreSQL, "
      "unquoted names fold to lower case; double-quote a name to keep its case or to use "
      "other characters (`\"\"` is a quote inside one): `'\"My Schema\".\"Weird.Table\"'`.\n";
  out +=
      "- Paths: relative paths (`state_dir`, `sinks[].path`, `source.password_file`) are "
      "relative to the directory of the configuration file.\n\n";

  out += "## Minimal example\n\n";
  out += "```yaml\n";
  out += minimalExample();
  out += "```\n";
  return out;
}

}  // namespace tidemark::config
