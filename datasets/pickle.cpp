#include "datasets/pickle.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "engine/common.h"

namespace advcl::data {

const char* PyValue::kind_name() const {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Bytes: return "bytes";
    case Kind::Str: return "str";
    case Kind::List: return "list";
    case Kind::Tuple: return "tuple";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Array: return "numpy array";
    case Kind::DType: return "numpy dtype";
  }
  return "?";
}

PyRef PyValue::get(const std::string& key) const {
  for (const auto& kv : dict)
    if ((kv.first->kind == Kind::Bytes || kv.first->kind == Kind::Str) && kv.first->s == key) return kv.second;
  return nullptr;
}

PyValue::~PyValue() {
  if (items.empty() && dict.empty()) return;
  // Destroying a child from here would destroy its children in turn, one
  // stack frame per level: a pickle nested 300,000 deep overflowed the stack.
  // Instead, values this one owns alone are emptied into a work list first,
  // so each destructor below runs on a value without children.
  std::vector<PyRef> pending;
  auto adopt = [&pending](PyValue& v) {
    for (PyRef& it : v.items) pending.push_back(std::move(it));
    for (auto& kv : v.dict) {
      pending.push_back(std::move(kv.first));
      pending.push_back(std::move(kv.second));
    }
    v.items.clear();
    v.dict.clear();
  };
  adopt(*this);
  while (!pending.empty()) {
    PyRef v = std::move(pending.back());
    pending.pop_back();
    if (v && v.use_count() == 1) adopt(*v);  // we hold its last reference: it dies at the end of this iteration
  }
}

namespace {

size_t child_count(const PyValue& v) { return v.items.size() + 2 * v.dict.size(); }
const PyValue* child(const PyValue& v, size_t i) {
  if (i < v.items.size()) return v.items[i].get();
  const auto& kv = v.dict[(i - v.items.size()) / 2];
  return ((i - v.items.size()) % 2 ? kv.second : kv.first).get();
}

// Element size of a numpy type string such as "u1", "<i8", "|b1".
int64_t dtype_itemsize(const std::string& t) {
  size_t i = 0;
  while (i < t.size() && !(t[i] >= '0' && t[i] <= '9')) ++i;
  return i < t.size() ? std::atoll(t.c_str() + i) : 0;
}

class Unpickler {
 public:
  Unpickler(const std::vector<uint8_t>& d, const std::string& name) : d_(d), name_(name) {}

  // Every value made here is in all_. Values that may be cyclic (a list
  // appended to itself through the memo) or that the caller does not get
  // lose their children here, so no reference cycle outlives the parse.
  ~Unpickler() {
    for (const PyRef& v : all_)
      if (!reachable_.count(v.get())) {
        v->items.clear();
        v->dict.clear();
      }
  }

  PyRef run() {
    for (uint64_t ops = 0;; ++ops) {
      size_t at = pos_;
      // Each opcode adds at most one value, memo entry or stack slot: this
      // bounds the memory a file can make us allocate beyond its own bytes.
      if (ops >= kMaxPickleOps)
        fail(name_, ": the pickle has more than ", kMaxPickleOps,
             " opcodes (a CIFAR batch or pseudo-label file has far fewer); refusing to read further at byte ", at);
      uint8_t op = u8();
      switch (op) {
        case 0x80: {  // PROTO
          int proto = u8();
          if (proto < 2 || proto > 4) bad(at, "pickle protocol ", proto, " (this reader handles protocols 2-4)");
          break;
        }
        case 0x95: take(8); break;  // FRAME: only a read-ahead hint
        case '}': push(make(PyValue::Kind::Dict)); break;
        case ']': push(make(PyValue::Kind::List)); break;
        case ')': push(make(PyValue::Kind::Tuple)); break;
        case '(': marks_.push_back(stack_.size()); break;
        case 'N': push(make(PyValue::Kind::None)); break;
        case 0x88: push(make_int(1, PyValue::Kind::Bool)); break;
        case 0x89: push(make_int(0, PyValue::Kind::Bool)); break;
        case 'K': push(make_int(u8())); break;
        case 'M': push(make_int(static_cast<int64_t>(le(2)))); break;
        case 'J': push(make_int(static_cast<int32_t>(le(4)))); break;
        case 0x8a: {  // LONG1: n-byte little-endian two's complement
          size_t n = u8();
          if (n > 8) bad(at, "integer of ", n, " bytes (too large for a label)");
          uint64_t v = n ? le(n) : 0;
          if (n && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
          push(make_int(static_cast<int64_t>(v)));
          break;
        }
        case 'U': push(make_text(str(u8()), PyValue::Kind::Bytes)); break;
        case 'T': push(make_text(str(len32(at)), PyValue::Kind::Bytes)); break;
        case 'C': push(make_text(str(u8()), PyValue::Kind::Bytes)); break;
        case 'B': push(make_text(str(len32(at)), PyValue::Kind::Bytes)); break;
        case 0x8e: push(make_text(str(le(8)), PyValue::Kind::Bytes)); break;
        case 'X': push(make_text(str(len32(at)), PyValue::Kind::Str)); break;
        case 0x8c: push(make_text(str(u8()), PyValue::Kind::Str)); break;
        case 0x8d: push(make_text(str(le(8)), PyValue::Kind::Str)); break;
        case 'c': {  // GLOBAL "module\nname\n"
          std::string mod = line(at), nm = line(at);
          push(make_text(mod + "." + nm, PyValue::Kind::Global));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          PyRef nm = pop(at), mod = pop(at);
          if (mod->kind != PyValue::Kind::Str || nm->kind != PyValue::Kind::Str) bad(at, "STACK_GLOBAL without names");
          push(make_text(mod->s + "." + nm->s, PyValue::Kind::Global));
          break;
        }
        case 't': {
          auto t = make(PyValue::Kind::Tuple);
          t->items = pop_mark(at);
          push(t);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          size_t n = op - 0x84u;
          if (stack_.size() < n + base()) bad(at, "TUPLE", n, " on a short stack");
          auto t = make(PyValue::Kind::Tuple);
          t->items.assign(stack_.end() - static_cast<long>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(t);
          break;
        }
        case 'a': {  // APPEND
          PyRef v = pop(at);
          list_at(at)->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto vs = pop_mark(at);
          auto& l = list_at(at)->items;
          l.insert(l.end(), vs.begin(), vs.end());
          break;
        }
        case 's': {  // SETITEM
          PyRef v = pop(at), k = pop(at);
          dict_at(at)->dict.emplace_back(k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto kv = pop_mark(at);
          if (kv.size() % 2) bad(at, "SETITEMS with an odd number of items");
          auto d = dict_at(at);
          for (size_t i = 0; i < kv.size(); i += 2) d->dict.emplace_back(kv[i], kv[i + 1]);
          break;
        }
        case 'R': {  // REDUCE
          PyRef args = pop(at), fn = pop(at);
          push(reduce(at, fn, args));
          break;
        }
        case 'b': {  // BUILD
          PyRef state = pop(at);
          build(at, top(at), state);
          break;
        }
        case 'q': memo_[u8()] = top(at); break;
        case 'r': memo_[static_cast<uint32_t>(le(4))] = top(at); break;
        case 0x94: memo_[static_cast<uint32_t>(memo_.size())] = top(at); break;  // MEMOIZE
        case 'h': push(get(at, u8())); break;
        case 'j': push(get(at, static_cast<uint32_t>(le(4)))); break;
        case '.': {  // STOP
          if (stack_.size() != 1 || !marks_.empty()) bad(at, "STOP with ", stack_.size(), " values on the stack");
          check_nesting(stack_.back());
          return stack_.back();
        }
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          bad(at, "unsupported pickle opcode ", hex,
              (op >= 0x20 && op < 0x7f) ? std::string(" ('") + static_cast<char>(op) + "')" : std::string());
        }
      }
    }
  }

 private:
  PyRef make(PyValue::Kind k) {
    auto v = std::make_shared<PyValue>();
    v->kind = k;
    all_.push_back(v);
    return v;
  }
  PyRef make_int(int64_t i, PyValue::Kind k = PyValue::Kind::Int) {
    auto v = make(k);
    v->i = i;
    return v;
  }
  PyRef make_text(std::string s, PyValue::Kind k) {
    auto v = make(k);
    v->s = std::move(s);
    return v;
  }

  // Refuses a result nested deeper than kMaxPickleDepth or containing itself;
  // marks what the caller receives as reachable_. Iterative (a depth-first
  // walk with an explicit stack, heights memoised for shared values), so the
  // check itself cannot overflow the stack it protects.
  void check_nesting(const PyRef& root) {
    struct Frame {
      const PyValue* v;
      size_t next;
      size_t height;  // 1 + the greatest height of the children seen so far
    };
    std::unordered_map<const PyValue*, size_t> height;  // finished values
    std::unordered_set<const PyValue*> open;            // values on the current path
    std::vector<Frame> path{{root.get(), 0, 1}};
    open.insert(root.get());
    while (!path.empty()) {
      Frame& f = path.back();
      if (f.next == child_count(*f.v)) {
        size_t h = f.height;
        height[f.v] = h;
        open.erase(f.v);
        path.pop_back();
        if (!path.empty()) path.back().height = std::max(path.back().height, h + 1);
        continue;
      }
      const PyValue* c = child(*f.v, f.next++);
      if (!c) continue;
      if (open.count(c)) fail(name_, ": the pickle holds a ", c->kind_name(), " that contains itself");
      auto done = height.find(c);
      if (done != height.end()) {
        f.height = std::max(f.height, done->second + 1);
        if (path.size() + done->second > kMaxPickleDepth) too_deep();
        continue;
      }
      if (path.size() + 1 > kMaxPickleDepth) too_deep();
      path.push_back({c, 0, 1});
      open.insert(c);
    }
    for (const auto& [v, h] : height) reachable_.insert(v);
  }
  [[noreturn]] void too_deep() const {
    fail(name_, ": the pickle nests values more than ", kMaxPickleDepth,
         " levels deep (a CIFAR batch or pseudo-label file nests fewer than 10); refusing it");
  }

  template <class... A>
  [[noreturn]] void bad(size_t at, const A&... a) const {
    fail(name_, ": not a pickle of the expected shape (a dict with a numpy uint8 array): ", a..., " at byte ", at);
  }

  uint8_t u8() {
    if (pos_ >= d_.size()) fail(name_, ": truncated pickle (ends at byte ", d_.size(), " without a STOP opcode)");
    return d_[pos_++];
  }
  const uint8_t* take(uint64_t n) {
    if (n > d_.size() - pos_)
      fail(name_, ": truncated pickle: a value of ", n, " bytes at byte ", pos_, " runs past the end (", d_.size(),
           " bytes)");
    const uint8_t* p = d_.data() + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  uint64_t le(size_t n) {
    const uint8_t* p = take(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
    return v;
  }
  uint64_t len32(size_t at) {
    int32_t n = static_cast<int32_t>(le(4));
    if (n < 0) bad(at, "negative length");
    return static_cast<uint64_t>(n);
  }
  std::string str(uint64_t n) {
    const uint8_t* p = take(n);
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  std::string line(size_t at) {
    size_t start = pos_;
    while (pos_ < d_.size() && d_[pos_] != '\n') ++pos_;
    if (pos_ >= d_.size() || pos_ - start > 256) bad(at, "malformed GLOBAL");
    std::string s(reinterpret_cast<const char*>(d_.data() + start), pos_ - start);
    ++pos_;
    return s;
  }

  size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(PyRef v) { stack_.push_back(std::move(v)); }
  PyRef pop(size_t at) {
    if (stack_.size() <= base()) bad(at, "pop from an empty stack");
    PyRef v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PyRef top(size_t at) {
    if (stack_.size() <= base()) bad(at, "empty stack");
    return stack_.back();
  }
  std::vector<PyRef> pop_mark(size_t at) {
    if (marks_.empty()) bad(at, "no MARK");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> out(stack_.begin() + static_cast<long>(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  PyRef list_at(size_t at) {
    PyRef l = top(at);
    if (l->kind != PyValue::Kind::List) bad(at, "append to a ", l->kind_name());
    return l;
  }
  PyRef dict_at(size_t at) {
    PyRef d = top(at);
    if (d->kind != PyValue::Kind::Dict) bad(at, "set item on a ", d->kind_name());
    return d;
  }
  PyRef get(size_t at, uint32_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) bad(at, "memo key ", k, " read before it was written");
    return it->second;
  }

  PyRef reduce(size_t at, const PyRef& fn, const PyRef& args) {
    if (fn->kind != PyValue::Kind::Global) bad(at, "REDUCE of a ", fn->kind_name());
    if (args->kind != PyValue::Kind::Tuple) bad(at, "REDUCE with ", args->kind_name(), " arguments");
    const auto& a = args->items;
    const std::string& g = fn->s;
    if (g == "_codecs.encode") {
      // Python 3 writes bytes at protocol 2 as encode(latin-1 text): undo it.
      if (a.size() != 2 || a[0]->kind != PyValue::Kind::Str || a[1]->kind != PyValue::Kind::Str ||
          (a[1]->s != "latin1" && a[1]->s != "latin-1"))
        bad(at, "_codecs.encode other than (str, 'latin1')");
      return make_text(utf8_to_latin1(at, a[0]->s), PyValue::Kind::Bytes);
    }
    if (g == "numpy.core.multiarray._reconstruct" || g == "numpy._core.multiarray._reconstruct") {
      if (a.empty() || a[0]->kind != PyValue::Kind::Global || a[0]->s != "numpy.ndarray")
        bad(at, "_reconstruct of something other than numpy.ndarray");
      return make(PyValue::Kind::Array);  // filled in by BUILD
    }
    if (g == "numpy.dtype") {
      if (a.empty() || (a[0]->kind != PyValue::Kind::Str && a[0]->kind != PyValue::Kind::Bytes))
        bad(at, "numpy.dtype without a type string");
      return make_text(a[0]->s, PyValue::Kind::DType);
    }
    bad(at, "unsupported global ", g, " (only numpy arrays and byte strings are understood)");
  }

  static std::string utf8_to_latin1_impl(const std::string& s, bool& ok) {
    std::string out;
    out.reserve(s.size());
    ok = true;
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) {
        out.push_back(static_cast<char>(c));
      } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && c <= 0xC3) {  // U+0080..U+00FF
        auto c2 = static_cast<unsigned char>(s[++i]);
        out.push_back(static_cast<char>(((c & 0x1F) << 6) | (c2 & 0x3F)));
      } else {
        ok = false;
        return out;
      }
    }
    return out;
  }
  std::string utf8_to_latin1(size_t at, const std::string& s) {
    bool ok;
    std::string out = utf8_to_latin1_impl(s, ok);
    if (!ok) bad(at, "a latin-1 byte string with characters above U+00FF");
    return out;
  }

  void build(size_t at, const PyRef& obj, const PyRef& state) {
    if (obj->kind == PyValue::Kind::DType) {
      // state: (version, byteorder, subarray, names, fields, elsize, alignment, flags)
      if (state->kind != PyValue::Kind::Tuple || state->items.size() < 2 ||
          (state->items[1]->kind != PyValue::Kind::Str && state->items[1]->kind != PyValue::Kind::Bytes))
        bad(at, "numpy dtype with an unexpected state");
      if (state->items.size() > 2 && state->items[2]->kind != PyValue::Kind::None) bad(at, "numpy sub-array dtype");
      obj->s = state->items[1]->s + obj->s;  // "|u1", "<i8"
      return;
    }
    if (obj->kind != PyValue::Kind::Array) bad(at, "BUILD of a ", obj->kind_name());
    // state: (version, shape, dtype, is_fortran_order, raw data)
    const auto& st = state->items;
    if (state->kind != PyValue::Kind::Tuple || st.size() != 5 || st[1]->kind != PyValue::Kind::Tuple ||
        st[2]->kind != PyValue::Kind::DType || st[4]->kind != PyValue::Kind::Bytes)
      bad(at, "numpy array with an unexpected state (object arrays are not supported)");
    int64_t count = 1;
    for (const auto& d : st[1]->items) {
      if (d->kind != PyValue::Kind::Int || d->i < 0) bad(at, "numpy array with a bad shape");
      obj->shape.push_back(d->i);
      count *= d->i;
    }
    obj->dtype = st[2]->s;
    int64_t item = dtype_itemsize(obj->dtype);
    if (item <= 0) bad(at, "numpy array of dtype ", obj->dtype);
    const std::string& raw = st[4]->s;
    if (static_cast<int64_t>(raw.size()) != count * item)
      bad(at, "numpy array data of ", raw.size(), " bytes for shape of ", count, " elements of ", item, " bytes");
    obj->bytes.assign(raw.begin(), raw.end());
    if (st[3]->i) to_c_order(*obj, item);
  }

  // Fortran-order data (first index fastest) rewritten in C order.
  static void to_c_order(PyValue& a, int64_t item) {
    size_t nd = a.shape.size();
    if (nd < 2) return;
    std::vector<uint8_t> out(a.bytes.size());
    std::vector<int64_t> idx(nd, 0), fstride(nd, 1);
    for (size_t d = 1; d < nd; ++d) fstride[d] = fstride[d - 1] * a.shape[d - 1];
    int64_t count = static_cast<int64_t>(a.bytes.size()) / item;
    for (int64_t c = 0; c < count; ++c) {
      int64_t f = 0;
      for (size_t d = 0; d < nd; ++d) f += idx[d] * fstride[d];
      std::memcpy(out.data() + c * item, a.bytes.data() + f * item, static_cast<size_t>(item));
      for (size_t d = nd; d-- > 0;) {  // advance the C-order index
        if (++idx[d] < a.shape[d]) break;
        idx[d] = 0;
      }
    }
    a.bytes.swap(out);
  }

  const std::vector<uint8_t>& d_;
  const std::string& name_;
  size_t pos_ = 0;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, PyRef> memo_;
  std::vector<PyRef> all_;
  std::unordered_set<const PyValue*> reachable_;
};

}  // namespace

PyRef unpickle(const std::vector<uint8_t>& data, const std::string& name) {
  if (data.size() > kMaxPickleBytes)
    fail(name, ": the pickle has ", data.size(), " bytes, more than the ", kMaxPickleBytes,
         " this reader accepts (a CIFAR-100 training file has about 155 MB)");
  if (data.size() < 2 || data[0] != 0x80)
    fail(name, ": not a pickle (a CIFAR python batch starts with the PROTO opcode 0x80; the first byte is ",
         data.empty() ? -1 : static_cast<int>(data[0]), ")");
  return Unpickler(data, name).run();
}

}  // namespace advcl::data
