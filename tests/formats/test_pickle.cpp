// The restricted unpickler and the protocol-2 pickler on their own (no torch): every opcode
// family on bytes CPython's pickle.dumps produced (protocols 0, 1, 2, 4, 5), integer edges,
// JSON -> pickle -> objects round trips, sets / bytes / bytearray / complex values, inert
// records (Hooks::inert_objects) for every opcode that calls or sets state, and hostile input:
// forbidden globals (the classic os.system __reduce__ payload in three protocols, refused by
// default and recorded without running in inert mode), instantiation opcodes, memo/stack/mark/
// work limits, truncation at every length, absurd lengths, invalid UTF-8.
#include "ckpt_catch.hpp"
#include <ckpt/detail/pickle_write.hpp>
#include <ckpt/detail/unpickle.hpp>

#include <cmath>
#include <filesystem>
#include <string_view>

using namespace ckpt;
using namespace ckpt::detail::pickle;
using namespace std::literals;

namespace {
std::vector<std::byte> B(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}
// The object as JSON: tuples as {"tuple": [...]}, dicts as {"dict": [[k, v], ...]} (+ "ordered").
Value show(const Object& o, int depth = 0) {
  REQUIRE(depth < 50);
  switch (o.type) {
    case Object::Type::none: return nullptr;
    case Object::Type::boolean: return o.flag;
    case Object::Type::integer: return o.flag ? Value(o.u) : Value(o.i);
    case Object::Type::floating: return o.f;
    case Object::Type::string: return o.s;
    case Object::Type::bytes: return Value{{o.flag ? "bytearray" : "bytes", o.s}};
    case Object::Type::global: return Value{{"global", o.s}};
    case Object::Type::list:
    case Object::Type::tuple: {
      Value a = Value::array();
      for (auto* x : o.items) a.push_back(show(*x, depth + 1));
      return o.type == Object::Type::tuple ? Value{{"tuple", a}} : a;
    }
    case Object::Type::dict: {
      Value a = Value::array();
      for (std::size_t k = 0; k < o.dict_size(); ++k) a.push_back(Value::array({show(*o.items[2 * k], depth + 1), show(*o.items[2 * k + 1], depth + 1)}));
      Value d{{"dict", a}};
      if (o.flag) d["ordered"] = true;
      return d;
    }
    case Object::Type::opaque: return Value{{"opaque", o.i}};
    case Object::Type::record: {  // {"record": {"$class": "module.name", "$args": ..., ...}}
      Value r = Value::object();
      for (std::size_t k = 0; k < o.dict_size(); ++k) {
        const Object& v = *o.items[2 * k + 1];
        r[o.items[2 * k]->s] = o.items[2 * k]->s == "$class" && v.is(Object::Type::global) ? Value(v.s) : show(v, depth + 1);
      }
      return Value{{"record", r}};
    }
  }
  return nullptr;
}
Value unpickle(std::string_view bytes, Limits lim = {}, bool inert = false) {
  Hooks hooks;
  hooks.inert_objects = inert;
  const auto b = B(bytes);
  Unpickler u(b, "test.pkl", hooks, lim);
  return show(*u.load());
}
template <class E>
std::string error_of(std::string_view bytes, Limits lim = {}, bool inert = false) {
  try {
    unpickle(bytes, lim, inert);
  } catch (const E& e) {
    return e.what();
  }
  FAIL("no exception of the expected type");
  return {};
}

// pickle.dumps({'a': [1, -2, 3.5, 'xé', None, True, False, (1, 2)], 'b': 2**40}, protocol=N)
constexpr auto p0 = "\x28\x64\x70\x30\x0a\x56\x61\x0a\x70\x31\x0a\x28\x6c\x70\x32\x0a\x49\x31\x0a\x61\x49\x2d\x32\x0a\x61\x46\x33\x2e\x35\x0a\x61\x56\x78\xe9\x0a\x70\x33\x0a\x61\x4e\x61\x49\x30\x31\x0a\x61\x49\x30\x30\x0a\x61\x28\x49\x31\x0a\x49\x32\x0a\x74\x70\x34\x0a\x61\x73\x56\x62\x0a\x70\x35\x0a\x4c\x31\x30\x39\x39\x35\x31\x31\x36\x32\x37\x37\x37\x36\x4c\x0a\x73\x2e"sv;
constexpr auto p1 = "\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x5d\x71\x02\x28\x4b\x01\x4a\xfe\xff\xff\xff\x47\x40\x0c\x00\x00\x00\x00\x00\x00\x58\x03\x00\x00\x00\x78\xc3\xa9\x71\x03\x4e\x49\x30\x31\x0a\x49\x30\x30\x0a\x28\x4b\x01\x4b\x02\x74\x71\x04\x65\x58\x01\x00\x00\x00\x62\x71\x05\x4c\x31\x30\x39\x39\x35\x31\x31\x36\x32\x37\x37\x37\x36\x4c\x0a\x75\x2e"sv;
constexpr auto p2 = "\x80\x02\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x5d\x71\x02\x28\x4b\x01\x4a\xfe\xff\xff\xff\x47\x40\x0c\x00\x00\x00\x00\x00\x00\x58\x03\x00\x00\x00\x78\xc3\xa9\x71\x03\x4e\x88\x89\x4b\x01\x4b\x02\x86\x71\x04\x65\x58\x01\x00\x00\x00\x62\x71\x05\x8a\x06\x00\x00\x00\x00\x00\x01\x75\x2e"sv;
constexpr auto p4 = "\x80\x04\x95\x38\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x28\x4b\x01\x4a\xfe\xff\xff\xff\x47\x40\x0c\x00\x00\x00\x00\x00\x00\x8c\x03\x78\xc3\xa9\x94\x4e\x88\x89\x4b\x01\x4b\x02\x86\x94\x65\x8c\x01\x62\x94\x8a\x06\x00\x00\x00\x00\x00\x01\x75\x2e"sv;
constexpr auto p5 = "\x80\x05\x95\x38\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x28\x4b\x01\x4a\xfe\xff\xff\xff\x47\x40\x0c\x00\x00\x00\x00\x00\x00\x8c\x03\x78\xc3\xa9\x94\x4e\x88\x89\x4b\x01\x4b\x02\x86\x94\x65\x8c\x01\x62\x94\x8a\x06\x00\x00\x00\x00\x00\x01\x75\x2e"sv;
// class Evil: __reduce__ = lambda self: (os.system, ('touch /tmp/ckpt-evil-marker',)); pickle.dumps(Evil(), protocol=N)
constexpr auto evil0 = "\x63\x70\x6f\x73\x69\x78\x0a\x73\x79\x73\x74\x65\x6d\x0a\x70\x30\x0a\x28\x56\x74\x6f\x75\x63\x68\x20\x2f\x74\x6d\x70\x2f\x63\x6b\x70\x74\x2d\x65\x76\x69\x6c\x2d\x6d\x61\x72\x6b\x65\x72\x0a\x70\x31\x0a\x74\x70\x32\x0a\x52\x70\x33\x0a\x2e"sv;
constexpr auto evil2 = "\x80\x02\x63\x70\x6f\x73\x69\x78\x0a\x73\x79\x73\x74\x65\x6d\x0a\x71\x00\x58\x1b\x00\x00\x00\x74\x6f\x75\x63\x68\x20\x2f\x74\x6d\x70\x2f\x63\x6b\x70\x74\x2d\x65\x76\x69\x6c\x2d\x6d\x61\x72\x6b\x65\x72\x71\x01\x85\x71\x02\x52\x71\x03\x2e"sv;
constexpr auto evil4 = "\x80\x04\x95\x36\x00\x00\x00\x00\x00\x00\x00\x8c\x05\x70\x6f\x73\x69\x78\x94\x8c\x06\x73\x79\x73\x74\x65\x6d\x94\x93\x94\x8c\x1b\x74\x6f\x75\x63\x68\x20\x2f\x74\x6d\x70\x2f\x63\x6b\x70\x74\x2d\x65\x76\x69\x6c\x2d\x6d\x61\x72\x6b\x65\x72\x94\x85\x94\x52\x94\x2e"sv;
// pickle.dumps({'s': {1, 2}, 'f': frozenset([3]), 'b': b'\x00\xff', 'e': b'', 'ba': bytearray(b'xy'), 'c': 1+2j}, protocol=N):
// protocol 2 spells them as calls (set([...]), _codecs.encode, bytes(), bytearray(bytes), complex(re, im)),
// 4 with EMPTY_SET/ADDITEMS, FROZENSET and BINBYTES, 5 with BYTEARRAY8
constexpr auto values2 = "\x80\x02\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x73\x71\x01\x63\x5f\x5f\x62\x75\x69\x6c\x74\x69\x6e\x5f\x5f\x0a\x73\x65\x74\x0a\x71\x02\x5d\x71\x03\x28\x4b\x01\x4b\x02\x65\x85\x71\x04\x52\x71\x05\x58\x01\x00\x00\x00\x66\x71\x06\x63\x5f\x5f\x62\x75\x69\x6c\x74\x69\x6e\x5f\x5f\x0a\x66\x72\x6f\x7a\x65\x6e\x73\x65\x74\x0a\x71\x07\x5d\x71\x08\x4b\x03\x61\x85\x71\x09\x52\x71\x0a\x58\x01\x00\x00\x00\x62\x71\x0b\x63\x5f\x63\x6f\x64\x65\x63\x73\x0a\x65\x6e\x63\x6f\x64\x65\x0a\x71\x0c\x58\x03\x00\x00\x00\x00\xc3\xbf\x71\x0d\x58\x06\x00\x00\x00\x6c\x61\x74\x69\x6e\x31\x71\x0e\x86\x71\x0f\x52\x71\x10\x58\x01\x00\x00\x00\x65\x71\x11\x63\x5f\x5f\x62\x75\x69\x6c\x74\x69\x6e\x5f\x5f\x0a\x62\x79\x74\x65\x73\x0a\x71\x12\x29\x52\x71\x13\x58\x02\x00\x00\x00\x62\x61\x71\x14\x63\x5f\x5f\x62\x75\x69\x6c\x74\x69\x6e\x5f\x5f\x0a\x62\x79\x74\x65\x61\x72\x72\x61\x79\x0a\x71\x15\x68\x0c\x58\x02\x00\x00\x00\x78\x79\x71\x16\x68\x0e\x86\x71\x17\x52\x71\x18\x85\x71\x19\x52\x71\x1a\x58\x01\x00\x00\x00\x63\x71\x1b\x63\x5f\x5f\x62\x75\x69\x6c\x74\x69\x6e\x5f\x5f\x0a\x63\x6f\x6d\x70\x6c\x65\x78\x0a\x71\x1c\x47\x3f\xf0\x00\x00\x00\x00\x00\x00\x47\x40\x00\x00\x00\x00\x00\x00\x00\x86\x71\x1d\x52\x71\x1e\x75\x2e"sv;
constexpr auto values4 = "\x80\x04\x95\x79\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x73\x94\x8f\x94\x28\x4b\x01\x4b\x02\x90\x8c\x01\x66\x94\x28\x4b\x03\x91\x94\x8c\x01\x62\x94\x43\x02\x00\xff\x94\x8c\x01\x65\x94\x43\x00\x94\x8c\x02\x62\x61\x94\x8c\x08\x62\x75\x69\x6c\x74\x69\x6e\x73\x94\x8c\x09\x62\x79\x74\x65\x61\x72\x72\x61\x79\x94\x93\x94\x43\x02\x78\x79\x94\x85\x94\x52\x94\x8c\x01\x63\x94\x68\x0a\x8c\x07\x63\x6f\x6d\x70\x6c\x65\x78\x94\x93\x94\x47\x3f\xf0\x00\x00\x00\x00\x00\x00\x47\x40\x00\x00\x00\x00\x00\x00\x00\x86\x94\x52\x94\x75\x2e"sv;
constexpr auto values5 = "\x80\x05\x95\x6c\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x73\x94\x8f\x94\x28\x4b\x01\x4b\x02\x90\x8c\x01\x66\x94\x28\x4b\x03\x91\x94\x8c\x01\x62\x94\x43\x02\x00\xff\x94\x8c\x01\x65\x94\x43\x00\x94\x8c\x02\x62\x61\x94\x96\x02\x00\x00\x00\x00\x00\x00\x00\x78\x79\x94\x8c\x01\x63\x94\x8c\x08\x62\x75\x69\x6c\x74\x69\x6e\x73\x94\x8c\x07\x63\x6f\x6d\x70\x6c\x65\x78\x94\x93\x94\x47\x3f\xf0\x00\x00\x00\x00\x00\x00\x47\x40\x00\x00\x00\x00\x00\x00\x00\x86\x94\x52\x94\x75\x2e"sv;
// argparse.Namespace(lr=0.5, name='x'), protocol 2: NEWOBJ + BUILD
constexpr auto namespace2 = "\x80\x02\x63\x61\x72\x67\x70\x61\x72\x73\x65\x0a\x4e\x61\x6d\x65\x73\x70\x61\x63\x65\x0a\x71\x00\x29\x81\x71\x01\x7d\x71\x02\x28\x58\x02\x00\x00\x00\x6c\x72\x71\x03\x47\x3f\xe0\x00\x00\x00\x00\x00\x00\x58\x04\x00\x00\x00\x6e\x61\x6d\x65\x71\x04\x58\x01\x00\x00\x00\x78\x71\x05\x75\x62\x2e"sv;
// collections.defaultdict(list, {'a': [1]}), protocol 2: REDUCE + SETITEM
constexpr auto defaultdict2 = "\x80\x02\x63\x63\x6f\x6c\x6c\x65\x63\x74\x69\x6f\x6e\x73\x0a\x64\x65\x66\x61\x75\x6c\x74\x64\x69\x63\x74\x0a\x71\x00\x63\x5f\x5f\x62\x75\x69\x6c\x74\x69\x6e\x5f\x5f\x0a\x6c\x69\x73\x74\x0a\x71\x01\x85\x71\x02\x52\x71\x03\x58\x01\x00\x00\x00\x61\x71\x04\x5d\x71\x05\x4b\x01\x61\x73\x2e"sv;
// a list subclass mod.L([1, 2]), protocol 2: NEWOBJ + APPENDS
constexpr auto list_subclass2 = "\x80\x02\x63\x6d\x6f\x64\x0a\x4c\x0a\x71\x00\x29\x81\x71\x01\x28\x4b\x01\x4b\x02\x65\x2e"sv;
// mod.K with __getnewargs_ex__ -> ((1,), {'b': 2}) and __dict__ {'a': 1}, protocol 4: NEWOBJ_EX + BUILD
constexpr auto newobj_ex4 = "\x80\x04\x95\x26\x00\x00\x00\x00\x00\x00\x00\x8c\x03\x6d\x6f\x64\x94\x8c\x01\x4b\x94\x93\x94\x4b\x01\x85\x94\x7d\x94\x8c\x01\x62\x94\x4b\x02\x73\x92\x94\x7d\x94\x8c\x01\x61\x94\x4b\x01\x73\x62\x2e"sv;
}  // namespace

TEST_CASE("unpickle: the same object from protocols 0, 1, 2, 4 and 5", "[pickle]") {
  const Value want = Value::parse(R"({"dict": [["a", [1, -2, 3.5, "xé", null, true, false, {"tuple": [1, 2]}]], ["b", 1099511627776]]})");
  for (auto bytes : {p0, p1, p2, p4, p5}) CHECK(unpickle(bytes) == want);
}

TEST_CASE("unpickle: integers at every encoding boundary, and > 64 bits refused", "[pickle]") {
  // pickle.dumps([2**63, -2**63, 2**64-1, -1, 255, 256, 65535, 65536, 2**31-1, -2**31, 2**31], 2)
  const auto big = "\x80\x02\x5d\x71\x00\x28\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x8a\x09\xff\xff\xff\xff\xff\xff\xff\xff\x00\x4a\xff\xff\xff\xff\x4b\xff\x4d\x00\x01\x4d\xff\xff\x4a\x00\x00\x01\x00\x4a\xff\xff\xff\x7f\x4a\x00\x00\x00\x80\x8a\x05\x00\x00\x00\x80\x00\x65\x2e"sv;
  const Value v = unpickle(big);
  REQUIRE(v.size() == 11);
  CHECK(v[0].get<std::uint64_t>() == (std::uint64_t{1} << 63));
  CHECK(v[1].get<std::int64_t>() == INT64_MIN);
  CHECK(v[2].get<std::uint64_t>() == UINT64_MAX);
  CHECK(v[3] == -1);
  CHECK(v[4] == 255);
  CHECK(v[5] == 256);
  CHECK(v[6] == 65535);
  CHECK(v[7] == 65536);
  CHECK(v[8] == 2147483647);
  CHECK(v[9] == -2147483648LL);
  CHECK(v[10] == 2147483648LL);
  const auto msg = error_of<format_error>("\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01\x2e"sv);  // 2**64
  CHECK_THAT(msg, ckpt_test::Contains("does not fit in 64 bits"));
}

TEST_CASE("unpickle: memo, DUP, POP, POP_MARK, DICT, LIST, shared references", "[pickle]") {
  // pickle.dumps((lambda l: [l, l])([1, 2]), 2): the inner list is one object, referenced twice
  Hooks hooks;
  const auto b = B("\x80\x02\x5d\x71\x00\x28\x5d\x71\x01\x28\x4b\x01\x4b\x02\x65\x68\x01\x65\x2e"sv);
  Unpickler u(b, "t", hooks);
  const Object* o = u.load();
  REQUIRE(o->items.size() == 2);
  CHECK(o->items[0] == o->items[1]);
  // hand-written: MARK 1 2 DICT ; DUP ; POP ; MARK 9 POP_MARK ; '(' K3 POP -> POP of empty frame pops the mark
  CHECK(unpickle("\x80\x02(K\x01K\x02\x64\x32\x30(K\x09\x31(0\x2e"sv) == Value{{"dict", Value::array({Value::array({1, 2})})}});
  CHECK(unpickle("(K\x01K\x02l."sv) == Value::array({1, 2}));
  CHECK(unpickle("(K\x07p12\ng12\n\x74."sv) == Value{{"tuple", {7, 7}}});  // PUT/GET text forms
  CHECK(unpickle("\x80\x04K\x05\x94h\x00\x86."sv) == Value{{"tuple", {5, 5}}});  // MEMOIZE
  CHECK(unpickle("K\x05r\x00\x01\x00\x00j\x00\x01\x00\x00\x86."sv) == Value{{"tuple", {5, 5}}});  // LONG_BINPUT/GET
}

TEST_CASE("unpickle: dict keys replace as in Python (1, True and 1.0 are one key)", "[pickle]") {
  // {1: 'a'} then SETITEM True: 'b', then 1.0: 'c'
  const auto v = unpickle("}K\x01X\x01\x00\x00\x00" "as\x88X\x01\x00\x00\x00" "bsG\x3f\xf0\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00\x63s."sv);
  CHECK(v == Value{{"dict", Value::array({Value::array({1, "c"})})}});
}

TEST_CASE("unpickle: protocol-0 strings and floats", "[pickle]") {
  CHECK(unpickle("S'a\\'b\\n\\x41\\101'\n."sv) == "a'b\nAA");
  CHECK(unpickle("V\\u00e9\\U0001f600x\n."sv) == "\u00e9\U0001F600x");
  CHECK(unpickle("Finf\n."sv).get<double>() == INFINITY);
  CHECK(std::isnan(unpickle("Fnan\n."sv).get<double>()));
  CHECK(unpickle("F-1.25e-3\n."sv).get<double>() == -1.25e-3);
  CHECK(unpickle("I-7\n."sv) == -7);
  CHECK(unpickle("L123L\n."sv) == 123);
}

TEST_CASE("unpickle: OrderedDict through REDUCE, NEWOBJ and STACK_GLOBAL, its BUILD state is dropped", "[pickle]") {
  // pickle.dumps(OrderedDict([('x', 1), ('y', [2])]), 2) and protocol 4
  const Value want = Value::parse(R"({"dict": [["x", 1], ["y", [2]]], "ordered": true})");
  CHECK(unpickle("\x80\x02\x63\x63\x6f\x6c\x6c\x65\x63\x74\x69\x6f\x6e\x73\x0a\x4f\x72\x64\x65\x72\x65\x64\x44\x69\x63\x74\x0a\x71\x00\x29\x52\x71\x01\x28\x58\x01\x00\x00\x00\x78\x71\x02\x4b\x01\x58\x01\x00\x00\x00\x79\x71\x03\x5d\x71\x04\x4b\x02\x61\x75\x2e"sv) == want);
  CHECK(unpickle("\x80\x04\x95\x33\x00\x00\x00\x00\x00\x00\x00\x8c\x0b\x63\x6f\x6c\x6c\x65\x63\x74\x69\x6f\x6e\x73\x94\x8c\x0b\x4f\x72\x64\x65\x72\x65\x64\x44\x69\x63\x74\x94\x93\x94\x29\x52\x94\x28\x8c\x01\x78\x94\x4b\x01\x8c\x01\x79\x94\x5d\x94\x4b\x02\x61\x75\x2e"sv) == want);
  CHECK(unpickle("ccollections\nOrderedDict\n)\x81."sv) == Value{{"dict", Value::array()}, {"ordered", true}});
  // a module state_dict: OrderedDict + BUILD {'_metadata': ...}
  CHECK(unpickle("ccollections\nOrderedDict\n)R}X\x09\x00\x00\x00_metadataK\x01sb."sv) == Value{{"dict", Value::array()}, {"ordered", true}});
  CHECK_THAT(error_of<format_error>("]}b."sv), ckpt_test::Contains("BUILD"));
}

TEST_CASE("unpickle: os.system __reduce__ payloads are refused, naming the global, and nothing runs", "[pickle][security]") {
  const std::filesystem::path marker = "/tmp/ckpt-evil-marker";
  std::filesystem::remove(marker);
  for (auto bytes : {evil0, evil2, evil4}) {
    const auto msg = error_of<format_error>(bytes);
    CHECK_THAT(msg, ckpt_test::Contains("posix.system") && ckpt_test::Contains("not allowed") && ckpt_test::Contains("test.pkl"));
  }
  CHECK_FALSE(std::filesystem::exists(marker));
  CHECK_THAT(error_of<format_error>("cbuiltins\neval\n."sv), ckpt_test::Contains("builtins.eval"));
  CHECK_THAT(error_of<format_error>("c__builtin__\nexec\n."sv), ckpt_test::Contains("builtins.exec"));
  CHECK_THAT(error_of<format_error>("\x80\x04\x8c\x02os\x8c\x06system\x93."sv), ckpt_test::Contains("os.system"));
  // instantiation, extension registry, persistent ids without hooks, calling a non-global
  CHECK_THAT(error_of<format_error>("(ios\nsystem\n."sv), ckpt_test::Contains("INST"));
  CHECK_THAT(error_of<format_error>("(K\x01o."sv), ckpt_test::Contains("OBJ"));
  CHECK_THAT(error_of<format_error>("\x82\x01."sv), ckpt_test::Contains("EXT1"));
  CHECK_THAT(error_of<format_error>("K\x01Q."sv), ckpt_test::Contains("persistent"));
  CHECK_THAT(error_of<format_error>("])R."sv), ckpt_test::Contains("cannot call"));
  // the refusal says how to read such a file anyway
  CHECK_THAT(error_of<format_error>(evil2), ckpt_test::Contains("--inert-objects") && ckpt_test::Contains("LoadOptions::inert_objects"));
}

TEST_CASE("unpickle: sets, frozensets, bytes, bytearrays and complex numbers, in protocols 2, 4 and 5", "[pickle]") {
  const Value want = Value::parse(R"({"dict": [
      ["s", {"record": {"$class": "builtins.set", "$items": [1, 2]}}],
      ["f", {"record": {"$class": "builtins.frozenset", "$items": [3]}}],
      ["b", {"bytes": "\u0000\u00ff"}], ["e", {"bytes": ""}], ["ba", {"bytearray": "xy"}],
      ["c", {"record": {"$class": "builtins.complex", "$args": {"tuple": [1.0, 2.0]}}}]]})");
  Value w = want;  // the JSON parser reads \u00ff as UTF-8; the bytes object holds the byte 0xff
  w["dict"][2][1]["bytes"] = std::string("\x00\xff", 2);
  for (auto bytes : {values2, values4, values5}) CHECK(unpickle(bytes) == w);
  // ADDITEMS only onto a set; bytes() only of bytes or (str, encoding)
  CHECK_THAT(error_of<format_error>("](K\x01\x90."sv), ckpt_test::Contains("ADDITEMS to a list"));
  CHECK_THAT(error_of<format_error>("\x80\x02" "c__builtin__\nbytes\nK\x01\x85R."sv), ckpt_test::Contains("bytes needs"));
  CHECK_THAT(error_of<format_error>("\x80\x02" "c__builtin__\ncomplex\nX\x01\x00\x00\x00" "x\x85R."sv), ckpt_test::Contains("complex of a str"));
}

TEST_CASE("unpickle: inert records for REDUCE, NEWOBJ, NEWOBJ_EX, BUILD, SETITEMS and APPENDS, nothing runs", "[pickle][security]") {
  const std::filesystem::path marker = "/tmp/ckpt-evil-marker";
  std::filesystem::remove(marker);
  // the os.system payload, in three protocols: a record of the call, not a call
  for (auto bytes : {evil0, evil2, evil4})
    CHECK(unpickle(bytes, {}, true) == Value::parse(R"({"record": {"$class": "posix.system", "$args": {"tuple": ["touch /tmp/ckpt-evil-marker"]}}})"));
  CHECK_FALSE(std::filesystem::exists(marker));
  // NEWOBJ + BUILD (argparse.Namespace), REDUCE + SETITEM (a dict subclass), NEWOBJ + APPENDS (a list subclass)
  CHECK(unpickle(namespace2, {}, true) == Value::parse(R"({"record": {"$class": "argparse.Namespace", "$state": {"dict": [["lr", 0.5], ["name", "x"]]}}})"));
  CHECK(unpickle(defaultdict2, {}, true) ==
        Value::parse(R"({"record": {"$class": "collections.defaultdict", "$args": {"tuple": [{"global": "builtins.list"}]}, "$items": {"dict": [["a", [1]]]}}})"));
  CHECK(unpickle(list_subclass2, {}, true) == Value::parse(R"({"record": {"$class": "mod.L", "$items": [1, 2]}})"));
  CHECK(unpickle(newobj_ex4, {}, true) ==
        Value::parse(R"({"record": {"$class": "mod.K", "$args": {"tuple": [1]}, "$kwargs": {"dict": [["b", 2]]}, "$state": {"dict": [["a", 1]]}}})"));
  // a call of a call's result; a global referenced, never called; BUILD twice updates a dict state
  CHECK(unpickle("cmod\nf\n)R)R."sv, {}, true) == Value::parse(R"({"record": {"$class": {"record": {"$class": "mod.f"}}}})"));
  CHECK(unpickle("cos\nsystem\n."sv, {}, true) == Value{{"global", "os.system"}});
  CHECK(unpickle("cmod\nC\n)\x81}X\x01\x00\x00\x00" "aK\x01" "sb}X\x01\x00\x00\x00" "bK\x02" "sb."sv, {}, true) ==
        Value::parse(R"({"record": {"$class": "mod.C", "$state": {"dict": [["a", 1], ["b", 2]]}}})"));
  CHECK_THAT(error_of<format_error>("cmod\nC\n)\x81K\x01" "bK\x02" "b."sv, {}, true), ckpt_test::Contains("BUILD twice"));
  // without the option each of them is refused at its GLOBAL, naming it
  for (auto bytes : {namespace2, defaultdict2, list_subclass2, newobj_ex4})
    CHECK_THAT(error_of<format_error>(bytes), ckpt_test::Contains("which is not allowed") && ckpt_test::Contains("--inert-objects"));
  CHECK_THAT(error_of<format_error>(newobj_ex4), ckpt_test::Contains("'mod.K'"));
  // still refused in inert mode: instantiation opcodes, calling data, keyword arguments to an allowed global
  CHECK_THAT(error_of<format_error>("(ios\nsystem\n."sv, {}, true), ckpt_test::Contains("INST"));
  CHECK_THAT(error_of<format_error>("])R."sv, {}, true), ckpt_test::Contains("cannot call a list"));
  CHECK_THAT(error_of<format_error>("ccollections\nOrderedDict\n)}X\x01\x00\x00\x00" "aK\x01" "s\x92."sv, {}, true), ckpt_test::Contains("keyword arguments"));
  CHECK_THAT(error_of<format_error>("cos\nsystem\n}b."sv, {}, true), ckpt_test::Contains("BUILD (setting state) on a global"));
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("unpickle: malformed input is a format_error with the offset, never a crash", "[pickle][bad]") {
  CHECK_THROWS_AS(unpickle(""sv), format_error);
  CHECK_THAT(error_of<format_error>("\x80\x02K\x01"sv), ckpt_test::Contains("truncated"));
  CHECK_THAT(error_of<format_error>("."sv), ckpt_test::Contains("underflow"));
  CHECK_THAT(error_of<format_error>("K\x01K\x02."sv), ckpt_test::Contains("left on the stack"));
  CHECK_THAT(error_of<format_error>("h\x05."sv), ckpt_test::Contains("never stored"));
  CHECK_THAT(error_of<format_error>("e."sv), ckpt_test::Contains("MARK"));
  CHECK_THAT(error_of<format_error>("\x80\x09."sv), ckpt_test::Contains("protocol 9"));
  CHECK_THAT(error_of<format_error>("\xff."sv), ckpt_test::Contains("0xff"));
  CHECK_THAT(error_of<format_error>("X\x02\x00\x00\x00\xc3\x28."sv), ckpt_test::Contains("UTF-8"));
  CHECK_THAT(error_of<format_error>("K\x01K\x02K\x03s."sv), ckpt_test::Contains("SETITEM on a int"));
  // a declared length of 4 GiB in a 10-byte input: refused before allocating
  CHECK_THAT(error_of<format_error>("X\xff\xff\xff\xff"sv), ckpt_test::Contains("truncated (4294967295 bytes needed"));
  CHECK_THAT(error_of<format_error>("\x8d\xff\xff\xff\xff\xff\xff\xff\xff"sv), ckpt_test::Contains("truncated"));
  try {
    unpickle("\x80\x02K\x01Z."sv);
    FAIL("no throw");
  } catch (const format_error& e) {
    CHECK(e.offset() == 4);
    CHECK(e.path() == "test.pkl");
  }
  // every prefix of a valid pickle fails cleanly
  for (auto full : {p0, p2, p4}) {
    for (std::size_t n = 0; n < full.size(); ++n) {
      INFO(n);
      CHECK_THROWS_AS(unpickle(full.substr(0, n)), format_error);
    }
  }
}

TEST_CASE("unpickle: memo, stack, MARK nesting, objects and work are bounded", "[pickle][bad]") {
  Limits lim;
  lim.max_memo = 4;
  CHECK_THAT(error_of<format_error>("K\x01q\x00q\x01q\x02q\x03q\x04."sv, lim), ckpt_test::Contains("memo larger than 4"));
  lim = {};
  lim.max_marks = 3;
  CHECK_THAT(error_of<format_error>("(((((."sv, lim), ckpt_test::Contains("MARKs nested deeper than 3"));
  lim = {};
  lim.max_stack = 3;
  CHECK_THAT(error_of<format_error>("NNNNN."sv, lim), ckpt_test::Contains("stack deeper than 3"));
  lim = {};
  lim.max_objects = 3;
  CHECK_THAT(error_of<format_error>("NNNNN."sv, lim), ckpt_test::Contains("more than 3 objects"));
  lim = {};
  lim.max_work = 10;
  std::string dups = "N";
  for (int i = 0; i < 20; ++i) dups += "20";  // DUP POP: no growth, only work
  CHECK_THAT(error_of<format_error>(dups + ".", lim), ckpt_test::Contains("too much work"));
  // a list that contains itself is fine for the unpickler (consumers bound their recursion)
  Hooks hooks;
  const auto b = B("]q\x00h\x00\x61."sv);
  Unpickler u(b, "t", hooks);
  const Object* o = u.load();
  CHECK(o->items.at(0) == o);
}

TEST_CASE("pickler: JSON values round-trip through protocol 2", "[pickle]") {
  const Value v = Value::parse(R"({"int": [0, 1, 255, 256, 65535, 65536, -1, -129, 2147483647, -2147483648, 2147483648,
      9223372036854775807, -9223372036854775808], "float": [0.1, -2.5, 1e300, 5e-324], "s": "h\u00e9\u4e16",
      "b": [true, false], "n": null, "nested": {"a": {"b": [[]]}, "empty": {}}})");
  Value w = v;
  w["u64"] = std::numeric_limits<std::uint64_t>::max();
  w["inf"] = std::numeric_limits<double>::infinity();
  Pickler pk;
  pk.value(w);
  const auto bytes = pk.finish();
  CHECK(static_cast<std::uint8_t>(bytes[0]) == op::PROTO);
  CHECK(static_cast<std::uint8_t>(bytes[1]) == 2);
  Hooks hooks;
  Unpickler u(bytes, "t", hooks);
  const Object* o = u.load();
  // dicts come back as {"dict": [[k, v]...]}: rebuild a plain JSON object to compare
  auto plain = [](auto&& self, const Value& x) -> Value {
    if (x.is_object() && x.contains("dict")) {
      Value r = Value::object();
      for (const auto& kv : x["dict"]) r[kv[0].get<std::string>()] = self(self, kv[1]);
      return r;
    }
    if (x.is_array()) {
      Value r = Value::array();
      for (const auto& e : x) r.push_back(self(self, e));
      return r;
    }
    return x;
  };
  const Value back = plain(plain, show(*o));
  CHECK(back == w);
  CHECK(back["u64"].get<std::uint64_t>() == std::numeric_limits<std::uint64_t>::max());
  CHECK(back["int"][11].get<std::int64_t>() == INT64_MAX);
}

TEST_CASE("pickler: globals are written once and referenced through the memo", "[pickle]") {
  Pickler pk;
  pk.mark();
  pk.global("collections", "OrderedDict");
  pk.global("collections", "OrderedDict");
  pk.tuple_from_mark();
  const auto bytes = pk.finish();
  const std::string s(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  CHECK(s.find("OrderedDict") == s.rfind("OrderedDict"));
  CHECK(unpickle(s) == Value{{"tuple", {Value{{"global", "collections.OrderedDict"}}, Value{{"global", "collections.OrderedDict"}}}}});
  Pickler bad;
  CHECK_THROWS_AS(bad.string("\xff"), unsupported_error);
}
