// Entry points for graph files: parse_graph parses the JSON (reporting a syntax error by line and
// column), recognises the format from the content and hands the document to its reader; load_graph
// and write_text_file do the file I/O. Also the helpers every reader shares: located error
// messages, typed field access, graph building after validation, and the JSON layout ckpt writes.
#include "ckpt/formats.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <utility>

#include "formats_internal.h"

namespace ckpt {

namespace internal {

std::string describe(std::string_view source, std::string_view where, std::string_view field,
                     std::string_view problem) {
  std::string message = fmt::format("{}: ", source);
  if (!where.empty()) {
    message += where;
    if (!field.empty()) message += fmt::format(" (field \"{}\")", field);
    message += ": ";
  } else if (!field.empty()) {
    message += fmt::format("field \"{}\": ", field);
  }
  message += problem;
  return message;
}

void fail(ErrorKind kind, std::string_view source, std::string_view where, std::string_view field,
          std::string_view problem) {
  throw Error(kind, describe(source, where, field, problem));
}

std::string list_entry(std::string_view list, std::size_t index, std::string_view name) {
  if (name.empty()) return fmt::format("{}[{}]", list, index);
  return fmt::format("{}[{}] \"{}\"", list, index, name);
}

void require_object(const nlohmann::json& json, std::string_view source, std::string_view where) {
  if (json.is_object()) return;
  fail(ErrorKind::kParse, source, where, "",
       fmt::format("expected a JSON object, found {}", json.type_name()));
}

ObjectReader::ObjectReader(const nlohmann::json& object, std::string_view source, std::string where)
    : object_(object), source_(source), where_(std::move(where)) {
  require_object(object_, source_, where_);
}

void ObjectReader::fail(ErrorKind kind, std::string_view field, std::string_view problem) const {
  internal::fail(kind, source_, where_, field, problem);
}

bool ObjectReader::has(std::string_view key) const {
  return object_.find(std::string(key)) != object_.end();
}

const nlohmann::json& ObjectReader::get(std::string_view key) const {
  const auto it = object_.find(std::string(key));
  if (it == object_.end()) fail(ErrorKind::kParse, key, "missing required field");
  return *it;
}

std::string ObjectReader::string(std::string_view key) const {
  const nlohmann::json& json = get(key);
  if (!json.is_string()) {
    fail(ErrorKind::kParse, key, fmt::format("expected a string, found {}", json.type_name()));
  }
  return json.get<std::string>();
}

std::optional<std::string> ObjectReader::optional_string(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return string(key);
}

namespace {

// An integer, also written as a float with no fraction (1024.0), within int64.
std::optional<std::int64_t> as_integer(const nlohmann::json& json) {
  if (json.is_number_unsigned()) {
    const auto value = json.get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(value);
  }
  if (json.is_number_integer()) return json.get<std::int64_t>();
  if (!json.is_number_float()) return std::nullopt;
  const double value = json.get<double>();
  // 2^63 is exactly representable; anything at or past it does not fit.
  if (!std::isfinite(value) || std::trunc(value) != value || value >= 9223372036854775808.0 ||
      value < -9223372036854775808.0) {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(value);
}

std::string found(const nlohmann::json& json) {
  if (json.is_number() || json.is_boolean()) return json.dump();
  return json.type_name();
}

}  // namespace

std::int64_t ObjectReader::integer(std::string_view key) const {
  const nlohmann::json& json = get(key);
  const std::optional<std::int64_t> value = as_integer(json);
  if (!value) {
    fail(ErrorKind::kParse, key,
         fmt::format("expected a whole number within 64 bits, found {}", found(json)));
  }
  return *value;
}

std::optional<std::int64_t> ObjectReader::optional_integer(std::string_view key) const {
  if (!has(key)) return std::nullopt;
  return integer(key);
}

double ObjectReader::number(std::string_view key) const {
  const nlohmann::json& json = get(key);
  if (!json.is_number()) {
    fail(ErrorKind::kParse, key, fmt::format("expected a number, found {}", found(json)));
  }
  return json.get<double>();
}

bool ObjectReader::boolean(std::string_view key) const {
  const nlohmann::json& json = get(key);
  if (!json.is_boolean()) {
    fail(ErrorKind::kParse, key, fmt::format("expected true or false, found {}", found(json)));
  }
  return json.get<bool>();
}

bool ObjectReader::boolean(std::string_view key, bool default_value) const {
  if (!has(key)) return default_value;
  return boolean(key);
}

const nlohmann::json& ObjectReader::array(std::string_view key) const {
  const nlohmann::json& json = get(key);
  if (!json.is_array()) {
    fail(ErrorKind::kParse, key, fmt::format("expected an array, found {}", found(json)));
  }
  return json;
}

std::vector<std::int64_t> ObjectReader::integers(std::string_view key) const {
  std::vector<std::int64_t> result;
  for (const nlohmann::json& item : array(key)) {
    const std::optional<std::int64_t> value = as_integer(item);
    if (!value) {
      fail(ErrorKind::kParse, key,
           fmt::format("expected an array of whole numbers, found {} at position {}", found(item),
                       result.size()));
    }
    result.push_back(*value);
  }
  return result;
}

std::vector<std::string> ObjectReader::strings(std::string_view key) const {
  std::vector<std::string> result;
  for (const nlohmann::json& item : array(key)) {
    if (!item.is_string()) {
      fail(ErrorKind::kParse, key,
           fmt::format("expected an array of strings, found {} at position {}", found(item),
                       result.size()));
    }
    result.push_back(item.get<std::string>());
  }
  return result;
}

std::vector<bool> ObjectReader::booleans(std::string_view key) const {
  std::vector<bool> result;
  for (const nlohmann::json& item : array(key)) {
    if (!item.is_boolean()) {
      fail(ErrorKind::kParse, key,
           fmt::format("expected an array of true/false, found {} at position {}", found(item),
                       result.size()));
    }
    result.push_back(item.get<bool>());
  }
  return result;
}

void ObjectReader::reject_unknown_keys(std::initializer_list<std::string_view> known) const {
  for (const auto& [key, unused] : object_.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    std::string listed;
    for (std::string_view name : known) {
      listed += fmt::format("{}\"{}\"", listed.empty() ? "" : ", ", name);
    }
    fail(ErrorKind::kParse, key,
         fmt::format("unknown field; the fields allowed here are {} (is it misspelt?)", listed));
  }
}

Graph build_forward_graph(std::string name, std::vector<Value> values, std::vector<Op> ops,
                          std::optional<ValueId> loss, std::string_view source) {
  validate_forward_parts(values, ops, loss.value_or(default_loss(ops)), source);
  GraphBuilder builder(std::move(name));
  for (Value& value : values) builder.add_value(std::move(value));
  for (Op& op : ops) builder.add_op(std::move(op));
  if (loss) builder.set_loss(*loss);
  return std::move(builder).build();
}

TrainingGraph build_joint_graph(std::string name, std::vector<TValue> values,
                                std::vector<Node> nodes, std::string_view source) {
  // Producers first (validation checks them); out-of-range ids are left to validation.
  for (TValue& value : values) value.producer = kNoId;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    for (ValueId out : nodes[n].outputs) {
      if (out < 0 || static_cast<std::size_t>(out) >= values.size()) continue;
      TValue& value = values[static_cast<std::size_t>(out)];
      if (value.producer == kNoId) value.producer = static_cast<NodeId>(n);
    }
  }
  validate_joint_parts(values, nodes, source);
  return TrainingGraph(std::move(name), std::move(values), std::move(nodes), /*derived=*/false);
}

namespace {

std::string inline_json(const nlohmann::ordered_json& json) {
  if (json.is_object()) {
    std::string text = "{";
    for (auto it = json.begin(); it != json.end(); ++it) {
      if (it != json.begin()) text += ", ";
      text += nlohmann::ordered_json(it.key()).dump() + ": " + inline_json(it.value());
    }
    return text + "}";
  }
  if (json.is_array()) {
    std::string text = "[";
    for (std::size_t i = 0; i < json.size(); ++i) {
      if (i > 0) text += ", ";
      text += inline_json(json[i]);
    }
    return text + "]";
  }
  return json.dump();
}

bool is_array_of_objects(const nlohmann::ordered_json& json) {
  return json.is_array() && !json.empty() &&
         std::all_of(json.begin(), json.end(),
                     [](const nlohmann::ordered_json& item) { return item.is_object(); });
}

}  // namespace

std::string dump_layout(const nlohmann::ordered_json& document) {
  if (!document.is_object() || document.empty()) return inline_json(document) + "\n";
  std::string text = "{\n";
  std::size_t index = 0;
  for (auto it = document.begin(); it != document.end(); ++it, ++index) {
    text += "  " + nlohmann::ordered_json(it.key()).dump() + ": ";
    if (is_array_of_objects(it.value())) {
      text += "[\n";
      const nlohmann::ordered_json& items = it.value();
      for (std::size_t i = 0; i < items.size(); ++i) {
        text += "    " + inline_json(items[i]) + (i + 1 < items.size() ? ",\n" : "\n");
      }
      text += "  ]";
    } else {
      text += inline_json(it.value());
    }
    text += index + 1 < document.size() ? ",\n" : "\n";
  }
  return text + "}\n";
}

std::string file_stem(std::string_view path) { return std::filesystem::path(path).stem().string(); }

}  // namespace internal

namespace {

constexpr std::string_view kNativeFormat = "ckpt-graph/1";
constexpr std::string_view kProfileFormat = "ckpt-profile/1";
constexpr std::string_view kAccepted =
    "ckpt reads native graphs (\"format\": \"ckpt-graph/1\", docs/format.md), op-level profiles "
    "(\"format\": \"ckpt-profile/1\") and node-link joint graphs with \"nodes\" and \"links\" "
    "(Checkmate, Moccasin)";

// Forwards SAX events to nlohmann's DOM builder and keeps where a syntax error happened, which
// nlohmann's exceptions carry for some errors but not all (a number overflow has no position).
class LocatingSax {
 public:
  using json = nlohmann::json;

  explicit LocatingSax(json& result) : dom_(result, /*allow_exceptions_=*/false) {}

  bool null() { return dom_.null(); }
  bool boolean(bool value) { return dom_.boolean(value); }
  bool number_integer(json::number_integer_t value) { return dom_.number_integer(value); }
  bool number_unsigned(json::number_unsigned_t value) { return dom_.number_unsigned(value); }
  bool number_float(json::number_float_t value, const json::string_t& text) {
    return dom_.number_float(value, text);
  }
  bool string(json::string_t& value) { return dom_.string(value); }
  bool binary(json::binary_t& value) { return dom_.binary(value); }
  bool start_object(std::size_t size) { return dom_.start_object(size); }
  bool key(json::string_t& value) { return dom_.key(value); }
  bool end_object() { return dom_.end_object(); }
  bool start_array(std::size_t size) { return dom_.start_array(size); }
  bool end_array() { return dom_.end_array(); }
  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const json::exception& error) {
    error_position_ = position;
    error_message_ = error.what();
    return false;
  }

  std::size_t error_position() const { return error_position_; }
  const std::string& error_message() const { return error_message_; }

 private:
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::size_t error_position_ = 0;
  std::string error_message_;
};

// nlohmann's text without its "[json.exception.parse_error.101] parse error at line 3, column
// 8: " prefix (ckpt prints its own location), and with the token it quotes after "last read: "
// cut to its last kMaxLastRead characters: a bad byte after a long string would otherwise put
// the whole string into the message.
std::string error_detail(std::string_view message) {
  constexpr std::size_t kMaxLastRead = 40;
  const auto bracket = message.find("] ");
  if (bracket != std::string_view::npos) message.remove_prefix(bracket + 2);
  if (message.starts_with("parse error")) {
    const auto colon = message.find(": ");
    if (colon != std::string_view::npos) message.remove_prefix(colon + 2);
  }
  constexpr std::string_view kLastRead = "last read: '";
  const auto start = message.find(kLastRead);
  const auto end = message.rfind('\'');
  if (start == std::string_view::npos || end == std::string_view::npos ||
      end < start + kLastRead.size() + kMaxLastRead) {
    return std::string(message);
  }
  const std::size_t token = start + kLastRead.size();
  return fmt::format("{}...{}", message.substr(0, token), message.substr(end - kMaxLastRead));
}

// `position` counts the characters read, the offending one included.
std::pair<std::size_t, std::size_t> line_and_column(std::string_view text, std::size_t position) {
  const std::size_t offset = std::min(position == 0 ? 0 : position - 1, text.size());
  const std::string_view before = text.substr(0, offset);
  const std::size_t line =
      1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
  const std::size_t line_start = before.rfind('\n');
  const std::size_t column =
      line_start == std::string_view::npos ? offset + 1 : offset - line_start;
  return {line, column};
}

nlohmann::json parse_json(std::string_view text, std::string_view source) {
  nlohmann::json document;
  LocatingSax sax(document);
  if (nlohmann::json::sax_parse(text, &sax)) return document;
  const auto [line, column] = line_and_column(text, sax.error_position());
  throw Error(ErrorKind::kParse, fmt::format("{}:{}:{}: invalid JSON: {}", source, line, column,
                                             error_detail(sax.error_message())));
}

LoadedGraph read_by_format(const nlohmann::json& document, std::string_view source) {
  const nlohmann::json& format = document["format"];
  if (!format.is_string()) {
    internal::fail(ErrorKind::kParse, source, "", "format",
                   fmt::format("expected a string such as \"{}\", found {}", kNativeFormat,
                               format.type_name()));
  }
  const auto name = format.get<std::string>();
  if (name == kNativeFormat) return internal::read_native(document, source);
  if (name == kProfileFormat) return internal::read_profile(document, source);
  for (std::string_view known : {kNativeFormat, kProfileFormat}) {
    const std::string_view family = known.substr(0, known.find('/') + 1);
    if (!name.starts_with(family)) continue;
    internal::fail(
        ErrorKind::kParse, source, "", "format",
        fmt::format("unsupported version \"{}\"; this build of ckpt reads \"{}\"", name, known));
  }
  internal::fail(ErrorKind::kParse, source, "", "format",
                 fmt::format("unknown format \"{}\"; {}", name, kAccepted));
}

}  // namespace

std::string_view to_string(GraphFormat format) {
  switch (format) {
    case GraphFormat::kNative:
      return "native";
    case GraphFormat::kNodeLink:
      return "node-link";
    case GraphFormat::kProfile:
      return "profile";
  }
  return "unknown";
}

LoadedGraph parse_graph(std::string_view text, std::string_view source) {
  const nlohmann::json document = parse_json(text, source);
  if (!document.is_object()) {
    internal::fail(
        ErrorKind::kParse, source, "", "",
        fmt::format("expected a JSON object, found {}; {}", document.type_name(), kAccepted));
  }
  if (document.contains("format")) return read_by_format(document, source);
  if (document.contains("nodes") && document.contains("links")) {
    return internal::read_node_link(document, source);
  }
  internal::fail(ErrorKind::kParse, source, "", "format",
                 fmt::format("missing, and the file is no node-link graph either; a native file "
                             "starts with \"format\": \"{}\"; {}",
                             kNativeFormat, kAccepted));
}

LoadedGraph load_graph(const std::string& path) {
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) {
    const int error = errno;
    internal::fail(ErrorKind::kIo, path, "", "",
                   fmt::format("cannot open the file for reading: {}; check the path and its "
                               "permissions",
                               std::strerror(error)));
  }
  std::string text;
  char buffer[1 << 16];
  for (;;) {
    const std::size_t read = std::fread(buffer, 1, sizeof(buffer), file.get());
    text.append(buffer, read);
    if (read == sizeof(buffer)) continue;
    if (!std::ferror(file.get())) break;
    const int error = errno;
    internal::fail(ErrorKind::kIo, path, "", "",
                   fmt::format("cannot read the file: {}; check that it is a readable file",
                               std::strerror(error)));
  }
  return parse_graph(text, path);
}

void write_text_file(const std::string& path, std::string_view text) {
  // The temporary sits next to the target so that the rename cannot cross file systems.
  static std::atomic<unsigned> counter{0};
  const std::string temporary =
      fmt::format("{}.tmp.{}.{}", path, static_cast<long>(::getpid()), counter++);
  auto fail_io = [&](std::string_view what, int error) {
    std::remove(temporary.c_str());
    internal::fail(ErrorKind::kIo, path, "", "",
                   fmt::format("cannot write the file ({}): {}; check that the directory exists "
                               "and is writable",
                               what, std::strerror(error)));
  };
  std::FILE* file = std::fopen(temporary.c_str(), "wb");
  if (file == nullptr) {
    const int error = errno;
    internal::fail(ErrorKind::kIo, path, "", "",
                   fmt::format("cannot create the temporary file \"{}\": {}; check that the "
                               "directory exists and is writable",
                               temporary, std::strerror(error)));
  }
  const bool written = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const int write_error = errno;
  const bool closed = std::fclose(file) == 0;
  if (!written) fail_io("write", write_error);
  if (!closed) fail_io("close", errno);
  if (std::rename(temporary.c_str(), path.c_str()) != 0) fail_io("rename", errno);
}

}  // namespace ckpt
