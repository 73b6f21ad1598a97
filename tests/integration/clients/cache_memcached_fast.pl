# Cache::Memcached::Fast (Perl, XS, text protocol) driven through every
# command it has, against one server: perl cache_memcached_fast.pl PORT
# (127.0.0.1) or a UNIX socket's PATH.
# Prints one "label: result" line per step; test_clients_other.py runs it
# against memcached and the server under test and compares the lines.
use strict; use warnings;
use Cache::Memcached::Fast;
use Data::Dumper; $Data::Dumper::Sortkeys = 1; $Data::Dumper::Indent = 0; $Data::Dumper::Terse = 1; $Data::Dumper::Useqq = 1;
my $port = shift;
my $addr = $port =~ m{/} ? $port : "127.0.0.1:$port";
# max_size above the server's 1 MB item limit: the server, not the client,
# refuses the large values below. No compression: values go as sent.
my %o = (connect_timeout => 2, io_timeout => 3, max_size => 4 * 1024 * 1024,
         compress_threshold => -1, max_failures => 0);
my $c = Cache::Memcached::Fast->new({ servers => [$addr], %o });
# $q: "noreply" in void context (the server sends nothing); $nw: nowait
# (replies read later, in bulk)
my $q = Cache::Memcached::Fast->new({ servers => [{ address => $addr, noreply => 1 }], %o });
my $nw = Cache::Memcached::Fast->new({ servers => [$addr], nowait => 1, %o });
my @out;
sub t { my ($l, $v) = @_; push @out, "$l: " . Dumper($v) }
t("flush_all", [values %{$c->flush_all}]);
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
t("prepend miss", $c->prepend("nokey", "zz"));
t("get after append", $c->get("a"));
t("set number", $c->set("n", 5));
t("incr", $c->incr("n", 3));
t("incr default 1", $c->incr("n"));
t("decr", $c->decr("n", 4));
t("decr below zero", $c->decr("n", 100));
t("incr miss", $c->incr("nonum", 1));
t("incr non-numeric", $c->incr("a", 1));
t("incr 64-bit wrap", do { $c->set("big64", "18446744073709551615"); $c->incr("big64", 2) });
t("incr big delta", do { $c->set("n2", 1); $c->incr("n2", "18446744073709551614") });
t("incr_multi", [$c->incr_multi(["n", 2], "nonum", ["n2", 1])]);
t("delete", $c->delete("b"));
t("delete miss", $c->delete("b"));
my $g = $c->gets("a");
t("gets", [$$g[0] > 0, $$g[1]]);
t("cas ok", $c->cas("a", @$g[0], "v2"));
t("cas stale", $c->cas("a", @$g[0], "v3"));
t("cas miss", $c->cas("nokey", 1, "v3"));
t("get after cas", $c->get("a"));
my $gm = $c->gets_multi("a", "n", "nokey");
t("gets_multi", { map { $_ => [$gm->{$_}[0] > 0, $gm->{$_}[1]] } keys %$gm });
t("cas_multi", [$c->cas_multi(["a", $gm->{a}[0], "v4"], ["n", $gm->{n}[0], "7"], ["nokey", 5, "x"])]);
t("get_multi after cas_multi", $c->get_multi("a", "n"));
t("touch", $c->touch("a", 100));
t("touch miss", $c->touch("nokey", 100));
t("touch_multi", [$c->touch_multi(["a", 100], ["nokey", 100], ["n"])]);
t("gat", $c->gat(100, "a"));
t("gat miss", $c->gat(100, "nokey"));
t("gat_multi", $c->gat_multi(100, "a", "n", "nokey"));
my $gs = $c->gats(100, "a");
t("gats", [$$gs[0] > 0, $$gs[1]]);
my $gsm = $c->gats_multi(100, "a", "nokey");
t("gats_multi", { map { $_ => [$gsm->{$_}[0] > 0, $gsm->{$_}[1]] } keys %$gsm });
# serialized structures and flags
t("set ref", $c->set("ref", { k => [1, 2, "x"] }));
t("get ref", $c->get("ref"));
# binary-safe values, keys at the limit
my $bin = join("", map { chr } 0..255) x 4;
t("binary value", do { $c->set("binval", $bin); $c->get("binval") eq $bin ? 1 : 0 });
t("value with CRLF END", do { $c->set("crlf", "x\r\nEND\r\nVALUE y 0 1\r\n"); $c->get("crlf") });
t("250-byte key", do { $c->set("k" x 250, "long"); $c->get("k" x 250) });
t("251-byte key", $c->set("k" x 251, "toolong"));
t("empty value", do { $c->set("empty", ""); $c->get("empty") });
# sizes
my $big = "x" x 500_000;
t("set 500 KB", $c->set("big", $big));
t("get 500 KB", ($c->get("big") // "") eq $big ? 1 : 0);
t("set 1 MB - 1 KB", $c->set("near", "n" x (1024 * 1024 - 1024)));
t("get 1 MB - 1 KB", length($c->get("near") // ""));
t("set 1 MB + 1", $c->set("huge", "h" x (1024 * 1024 + 1)));
t("get after too large", $c->get("huge"));
t("set 2 MB", $c->set("huge2", "h" x (2 * 1024 * 1024)));
t("server still answers", $c->get("a"));
t("client-side limit", Cache::Memcached::Fast->new({ servers => [$addr] })->set("huge3", "h" x (1024 * 1024 + 1)));
# many keys
my @keys = map { "multi:$_" } 1..2000;
t("set_multi 2000", scalar(grep { $_ } $c->set_multi(map { [$_, "v-$_"] } @keys)));
my $got = $c->get_multi(@keys, "multi:none");
t("get_multi 2000", [scalar(keys %$got), scalar(grep { $got->{$_} eq "v-$_" } @keys)]);
t("delete_multi", scalar(grep { $_ } $c->delete_multi(@keys[0..999])));
t("get_multi after delete", scalar(keys %{$c->get_multi(@keys)}));
# noreply and nowait. Each connection is served on its own (by another
# worker, maybe): $q's replies-less commands are known done only once a
# command with a reply on $q has come back.
$q->set("nr1", "one"); $q->add("nr1", "dup"); $q->add("nr2", "two"); $q->replace("nr3", "x");
$q->append("nr1", "+"); $q->prepend("nr1", "-"); $q->incr("nrn", 1); $q->set("nrn", 10);
$q->incr("nrn", 5); $q->decr("nrn", 2); $q->delete("nr2"); $q->touch("nr1", 100);
$q->set_multi(map { ["nrm:$_", $_] } 1..500);
$q->delete("nrm:$_") for 1..250;
t("noreply sync", $q->get("nr1"));
t("noreply results", $c->get_multi("nr1", "nr2", "nr3", "nrn"));
$q->flush_all(0); $q->set("after-flush", 1); $q->get("after-flush");
t("noreply flush_all", scalar(keys %{$c->get_multi("nr1", "nrm:300", "after-flush")}));
$q->set("nrm:$_", $_) for 251..500;
$q->get("x");
t("noreply many", scalar(keys %{$c->get_multi(map { "nrm:$_" } 1..500)}));
$nw->set("nw:$_", $_) for 1..500;
$nw->delete("nw:$_") for 1..100;
$nw->nowait_push;
t("nowait many", scalar(keys %{$c->get_multi(map { "nw:$_" } 1..500)}));
# expiry (3 s, the margins as in dalli_ops.rb), extended by touch and gat;
# a negative TTL stores nothing visible
t("set ttl 3", $c->set("exp", "soon", 3));
$c->set("exp-touched", "later", 3); $c->touch("exp-touched", 100);
$c->set("exp-gat", "later", 3); $c->gat(100, "exp-gat");
$c->set("exp-neg", "gone", -1);
t("negative ttl", $c->get("exp-neg"));
t("get before expiry", $c->get("exp"));
select(undef, undef, undef, 4.1);
t("get after expiry", $c->get("exp"));
t("touched survives", $c->get("exp-touched"));
t("gat survives", $c->get("exp-gat"));
my $v = $c->server_versions;
t("version", join(",", map { (split /\./, $_)[0] } values %$v));
t("flush_all", [values %{$c->flush_all}]);
t("get after flush", scalar(keys %{$c->get_multi("a", "n", "big", "exp-gat", "nr1")}));
$c->disconnect_all;
print "$_\n" for @out;
