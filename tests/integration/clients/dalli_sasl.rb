# Dalli's SASL login (PLAIN over the binary protocol; Dalli 3.0 has no
# other mechanism) against a server started with -S:
#   ruby dalli_sasl.rb PORT USER PASSWORD
# Prints "label: result" lines (see dalli_ops.rb).
require "dalli"
Dalli.logger.level = Logger::WARN
port, user, password = ARGV
R = { raw: true }.freeze
$out = []
def t(label)
  v = begin
    yield
  rescue Dalli::DalliError, NotImplementedError => e
    "#{e.class}: #{e.message}"
  end
  $out << "#{label}: #{v.inspect}"
end
def client(port, **kw) = Dalli::Client.new("127.0.0.1:#{port}", socket_timeout: 3, socket_max_failures: 1, **kw)
good = client(port, username: user, password: password)
t("set") { good.set("k", "v", 0, R) ? true : false }
t("get") { good.get("k", R) }
t("incr") { good.incr("n", 1, 0, 10) }
t("get_multi") { good.get_multi("k", "n", "x").sort }
t("auth_cmds") { good.stats.values.first["auth_cmds"] }
bad = client(port, username: user, password: password + "x")
t("wrong password") { bad.get("k") }
nobody = client(port, username: "nobody", password: password)
t("unknown user") { nobody.get("k") }
anon = client(port)
t("no credentials") { anon.get("k") }
t("still logged in") { good.get("k", R) }
[good, bad, nobody, anon].each(&:close)
puts $out
