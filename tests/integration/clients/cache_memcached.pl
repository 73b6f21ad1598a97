# Cache::Memcached (pure Perl, text protocol; the original client, whose
# key hashing and stats calls others copy) against one server:
# perl cache_memcached.pl PORT. Prints one "label: result" line per step
# (see cache_memcached_fast.pl).
use strict; use warnings;
use Cache::Memcached;
use Data::Dumper; $Data::Dumper::Sortkeys = 1; $Data::Dumper::Indent = 0; $Data::Dumper::Terse = 1; $Data::Dumper::Useqq = 1;
my $port = shift;
my $srv = "127.0.0.1:$port";
my $c = Cache::Memcached->new({ servers => [$srv], connect_timeout => 2, select_timeout => 3,
                                 compress_threshold => 10_000 });
my @out;
sub t { my ($l, $v) = @_; push @out, "$l: " . Dumper($v) }
t("flush_all", $c->flush_all);
t("set", $c->set("a", "hello"));
t("get", $c->get("a"));
t("get miss", $c->get("missing"));
t("add existing", $c->add("a", "x"));
t("add new", $c->add("b", "bee"));
t("replace", $c->replace("a", "hi"));
t("replace miss", $c->replace("nokey", "y"));
t("append", $c->append("a", " there"));
t("prepend", $c->prepend("a", "oh "));
t("append miss", $c->append("nokey", "zz"));
t("get after append", $c->get("a"));
t("set number", $c->set("n", 5));
t("incr", $c->incr("n", 3));
t("incr default 1", $c->incr("n"));
t("decr", $c->decr("n", 4));
t("decr below zero", $c->decr("n", 100));
t("incr miss", $c->incr("nonum", 1));
t("incr non-numeric", $c->incr("a", 1));
t("delete", $c->delete("b"));
t("delete miss", $c->delete("b"));
t("set ref", $c->set("ref", { k => [1, 2, "x"] }));
t("get ref", $c->get("ref"));
my $comp = "compressible " x 5000;
t("set compressed", $c->set("comp", $comp));
t("get compressed", ($c->get("comp") // "") eq $comp ? 1 : 0);
my $bin = join("", map { chr } 0..255) x 4;
t("binary value", do { $c->set("binval", $bin); ($c->get("binval") // "") eq $bin ? 1 : 0 });
t("value with CRLF END", do { $c->set("crlf", "x\r\nEND\r\n"); $c->get("crlf") });
my $big = "x" x 500_000;
$c->enable_compress(0);
t("set 500 KB", $c->set("big", $big));
t("get 500 KB", ($c->get("big") // "") eq $big ? 1 : 0);
t("set 1 MB + 1", $c->set("huge", "h" x (1024 * 1024 + 1)));
t("get after too large", $c->get("huge"));
t("server still answers", $c->get("a"));
my @keys = map { "multi:$_" } 1..1000;
$c->set($_, "v-$_") for @keys;
my $got = $c->get_multi(@keys, "multi:none");
t("get_multi 1000", [scalar(keys %$got), scalar(grep { $got->{$_} eq "v-$_" } @keys)]);
t("get_multi small", $c->get_multi("a", "nokey", "n"));
# expiry (Cache::Memcached has no touch, gat, cas or noreply)
t("set ttl 3", $c->set("exp", "soon", 3));
t("get before expiry", $c->get("exp"));
select(undef, undef, undef, 4.1);
t("get after expiry", $c->get("exp"));
my $st = $c->stats;
my $h = $st->{hosts}{$srv};
t("stats misc keys", [grep { !exists $h->{misc}{$_} } qw(pid uptime version curr_items total_items cmd_get get_hits bytes curr_connections)]);
t("stats total keys", [grep { !exists $st->{total}{$_} } qw(cmd_get get_hits curr_items total_items bytes)]);
t("stats malloc", $h->{malloc});
my $s2 = $c->stats(["items", "slabs", "settings", "sizes", "conns", "nosuch"]);
my $h2 = $s2->{hosts}{$srv};
t("stats other types", { map { $_ => defined $h2->{$_} ? ($h2->{$_} =~ /^(ERROR|CLIENT_ERROR|STAT )/ ? $1 : $h2->{$_} eq "" ? "empty" : "other") : undef } qw(items slabs settings sizes conns nosuch) });
# (no stats_reset: Cache::Memcached 1.30 sends "stats reset" without its
# CRLF and waits out select_timeout, with either server)
t("flush_all", $c->flush_all);
t("get after flush", scalar(keys %{$c->get_multi("a", "n", "big")}));
$c->disconnect_all;
print "$_\n" for @out;
