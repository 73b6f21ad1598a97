# Dalli (Ruby; binary protocol, or meta with Dalli >= 3.2) driven through
# every command it has, against one server:
#   ruby dalli_ops.rb PORT [binary|meta]
# Prints one "label: result" line per step; test_clients_other.py runs it
# against memcached and the server under test and compares the lines.
# Nothing printed may depend on the server (pids, ports, timings; a CAS
# value only as "cas").
require "dalli"
Dalli.logger.level = Logger::WARN
port, mode = ARGV
# value_max_bytes above the server's 1 MB item limit: the server, not the
# client, refuses the large values below. compress off: values go as sent.
OPTS = { socket_timeout: 3, socket_max_failures: 1, value_max_bytes: 4 * 1024 * 1024,
         compress: false }.merge(mode == "meta" ? { protocol: :meta } : {}).freeze
c = Dalli::Client.new("127.0.0.1:#{port}", OPTS)
R = { raw: true }.freeze
$out = []
def t(label)
  v = begin
    yield
  rescue Dalli::DalliError => e
    "#{e.class}: #{e.message}"
  end
  $out << "#{label}: #{v.inspect}"
end
# a successful store returns the item's CAS: shown as "cas"
def stored(v) = v.is_a?(Integer) && v > 0 ? "cas" : v

t("flush") { c.flush }
t("set") { stored c.set("a", "hello", 0, R) }
t("get") { c.get("a") }
t("get miss") { c.get("missing") }
t("add existing") { c.add("a", "x", 0, R) }
t("add new") { stored c.add("b", "bee", 0, R) }
t("replace") { stored c.replace("a", "hi", 0, R) }
t("replace miss") { c.replace("nokey", "y", 0, R) }
t("append") { c.append("a", " there") }
t("prepend") { c.prepend("a", "oh ") }
t("append miss") { c.append("nokey", "zz") }
t("prepend miss") { c.prepend("nokey", "zz") }
t("get after append") { c.get("a") }
t("incr new with initial") { c.incr("ctr", 5, 0, 100) }
t("incr") { c.incr("ctr", 5) }
t("decr") { c.decr("ctr", 7) }
t("decr below zero") { c.decr("ctr", 1000) }
t("incr miss") { c.incr("nonum", 1) }
t("decr miss") { c.decr("nonum", 1) }
t("incr 64-bit wrap") { c.set("big64", "18446744073709551615", 0, R); c.incr("big64", 2) }
t("incr non-numeric") { c.incr("a", 1) }
t("decr new with initial") { c.decr("dctr", 1, 0, 3) }
t("delete") { c.delete("b") }
t("delete miss") { c.delete("b") }
v, cas = c.get_cas("a")
t("get_cas") { [v, cas.is_a?(Integer) && cas > 0] }
t("set_cas") { stored c.set_cas("a", "v2", cas, 0, R) }
t("set_cas stale") { c.set_cas("a", "v3", cas, 0, R) }
t("replace_cas stale") { c.replace_cas("a", "v3", 1, 0, R) }
t("delete_cas stale") { c.delete_cas("a", 1) }
t("cas block") { stored c.cas("a") { |old| old + "!" } }
t("cas block miss") { c.cas("nokey") { "x" } }
t("cas! miss") { stored c.cas!("casbang") { |old| "set:#{old.inspect}" } }
t("get after cas!") { c.get("casbang", R) }
t("get_multi_cas") { c.get_multi_cas("a", "nokey").transform_values { |vv, cc| [vv, cc > 0] } }
t("get after cas") { c.get("a") }
t("touch") { c.touch("a", 100) }
t("touch miss") { c.touch("nokey", 100) }
t("gat") { c.gat("a", 100) }
t("gat miss") { c.gat("nokey", 100) }
# Marshalled values: Dalli marks them in the item's flags
t("set object") { stored c.set("obj", { "k" => [1, 2.5, "x"], sym: nil }) }
t("get object") { c.get("obj") }
t("set integer") { stored c.set("int", 42) }
t("get integer") { c.get("int") }
t("compressed") {
  z = Dalli::Client.new("127.0.0.1:#{port}", OPTS.merge(compress: true, compression_min_size: 1024))
  s = "compressible " * 10_000
  z.set("zipped", s)
  r = z.get("zipped") == s
  z.close
  r
}
bin = (0..255).map(&:chr).join.b * 4
t("binary value") { c.set("binval", bin, 0, R); c.get("binval", R) == bin }
t("utf-8 value") { c.set("utf", "héllo wörld ✓", 0, R); c.get("utf", R).force_encoding("UTF-8") }
t("key with spaces and utf-8") { c.set("key with spaces ✓", "sp", 0, R); c.get("key with spaces ✓", R) }
# binary keys may hold any byte, those the text protocol cannot carry too
t("binary keys") {
  ["a\r\nb", "nul\x00key", "tab\tkey", "del\x7f", "\xff\xfe".b].map do |k|
    [c.set(k, k, 0, R) ? true : false, c.get(k, R) == k, c.get_multi(k, "x").keys == [k], c.delete(k)]
  end.uniq
}
t("250-byte key") { k = "k" * 250; c.set(k, "long", 0, R); c.get(k, R) }
t("empty value") { c.set("empty", "", 0, R); c.get("empty", R) }
big = "x" * 500_000
t("set 500 KB") { stored c.set("big", big, 0, R) }
t("get 500 KB") { c.get("big", R) == big }
t("set 1 MB - 1 KB") { stored c.set("near", "n" * (1024 * 1024 - 1024), 0, R) }
t("get 1 MB - 1 KB") { (c.get("near", R) || "").bytesize }
t("set 1 MB + 1") { stored c.set("huge", "h" * (1024 * 1024 + 1), 0, R) }
t("get after too large") { c.get("huge", R) }
t("set 2 MB") { stored c.set("huge2", "h" * (2 * 1024 * 1024), 0, R) }
t("server still answers") { c.get("a") }
t("client-side limit") {
  small = Dalli::Client.new("127.0.0.1:#{port}", OPTS.merge(value_max_bytes: 1024 * 1024))
  begin
    small.set("huge3", "h" * (1024 * 1024 + 1), 0, R)
  rescue Dalli::ValueOverMaxSize => e
    e.class.name
  ensure
    small.close
  end
}
# Many keys: quiet sets (setq), then one get_multi (getkq... noop), keys
# spread over every worker
keys = (1..1000).map { |i| "multi:#{i}" }
c.multi { keys.each { |k| c.set(k, "v-#{k}", 0, R) } }
got = c.get_multi(keys + ["multi:none1", "multi:none2"])
t("get_multi 1000") { [got.size, keys.all? { |k| got[k] == "v-#{k}" }] }
t("get_multi some missing") { c.get_multi("multi:3", "nokey", "multi:1").sort }
t("get_multi block") { h = {}; c.get_multi("multi:7", "multi:8") { |k, vv| h[k] = vv }; h.sort }
t("get_multi 300 x 100 KB") {
  bk = (1..300).map { |i| "large:#{i}" }
  c.multi { bk.each { |k| c.set(k, k * (100_000 / k.size), 0, R) } }
  g = c.get_multi(bk)
  [g.size, bk.all? { |k| g[k] == k * (100_000 / k.size) }]
}
# Quiet mode: setq/addq/replaceq/deleteq, failures silent
t("multi quiet ops") {
  c.multi do
    c.set("q1", "one", 0, R)
    c.add("q1", "dup", 0, R)
    c.add("q2", "two", 0, R)
    c.replace("q3", "x", 0, R)
    c.delete("q2")
    c.delete("qnone")
  end
  c.get_multi("q1", "q2", "q3").sort
}
t("multi deletes") { c.multi { keys.each { |k| c.delete(k) } }; c.get_multi(keys).size }
t("fetch miss") { c.fetch("f", 0, R) { "computed" } }
t("fetch hit") { c.fetch("f", 0, R) { "again" } }
t("namespace") {
  ns = Dalli::Client.new("127.0.0.1:#{port}", OPTS.merge(namespace: "app1"))
  ns.set("k", "nsv", 0, R)
  r = [ns.get("k"), c.get("app1:k", R)]
  ns.close
  r
}
t("ttl over 30 days") { stored c.set("month", "m", 31 * 86_400, R) }
# Expiry: relative and absolute TTLs, extended by touch and gat. 3 s: the
# server's clock ticks once a second, so an item may expire up to a second
# early; the read before expiry has 2 s, the one after sleeps 1 s more.
t("set ttl 3") { stored c.set("exp", "soon", 3, R) }
c.set("exp-abs", "abs", Time.now.to_i + 3, R)
c.set("exp-touched", "later", 3, R)
c.touch("exp-touched", 100)
c.set("exp-gat", "later", 3, R)
c.gat("exp-gat", 100)
t("get before expiry") { c.get_multi("exp", "exp-abs").sort }
sleep 4.1
t("get after expiry") { c.get_multi("exp", "exp-abs").sort }
t("touched survives") { c.get("exp-touched", R) }
t("gat survives") { c.get("exp-gat", R) }
t("month survives") { c.get("month", R) }
t("version") { c.version.values.first.split(".")[0, 2].join(".") }
st = c.stats.values.first
t("stats keys") { %w[pid uptime curr_items total_items cmd_get get_hits bytes curr_connections].reject { |k| st.key?(k) } }
t("stats settings") { c.stats(:settings).values.first.key?("maxconns") }
t("stats items") { c.stats(:items).values.first.is_a?(Hash) }
t("stats slabs") { c.stats(:slabs).values.first.is_a?(Hash) }
t("reset_stats") { c.reset_stats }
t("alive") { c.alive!; true }
t("flush") { c.flush }
t("get after flush") { c.get_multi("a", "obj", "big", "f").size }
c.close
puts $out
