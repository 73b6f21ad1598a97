// memjs (Node, binary protocol; requests pipelined on one connection and
// matched to replies by opaque) against one server: node memjs_ops.js PORT
// [USER PASSWORD]. Prints one "label: result" line per step;
// test_clients_other.py runs it against memcached and the server under
// test and compares the lines. memjs 1.3's prepend sends an append (a
// client bug: both servers append).
const memjs = require("memjs");
const port = process.argv[2];
const mk = (cred) => memjs.Client.create(`${cred}127.0.0.1:${port}`,
  { timeout: 3, retries: 0, logger: { log() {} } });
const out = [];
const show = (v) => {
  if (v === undefined) return "undefined";
  if (Buffer.isBuffer(v)) return JSON.stringify("buf:" + v.toString("latin1"));
  return JSON.stringify(v, (k, x) =>
    x && x.type === "Buffer" && Array.isArray(x.data) ? "buf:" + Buffer.from(x.data).toString("latin1") : x);
};
async function t(label, f) {
  let v;
  try { v = await f(); } catch (e) { v = "error: " + (e instanceof Error ? e.message : String(e)); }
  out.push(`${label}: ${show(v)}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function sasl(user, password) {
  const good = mk(`${user}:${password}@`), bad = mk(`${user}:${password}x@`), anon = mk("");
  await t("set", () => good.set("k", "v", {}));
  await t("get", async () => (await good.get("k")).value.toString());
  await t("increment", () => good.increment("n", 1, { initial: 10 }));
  await t("wrong password", () => bad.get("k"));
  await t("no credentials", () => anon.get("k"));
  await t("still logged in", async () => (await good.get("k")).value.toString());
  [good, bad, anon].forEach((x) => x.close());
}
async function ops(c) {
  await t("flush", async () => Object.values(await c.flush()));
  await t("set", () => c.set("a", "hello", {}));
  await t("get", () => c.get("a"));
  await t("get miss", () => c.get("missing"));
  await t("add existing", () => c.add("a", "x", {}));
  await t("add new", () => c.add("b", "bee", {}));
  await t("replace", () => c.replace("a", "hi", {}));
  await t("replace miss", () => c.replace("nokey", "y", {}));
  await t("append", () => c.append("a", " there"));
  await t("prepend", () => c.prepend("a", "oh "));
  await t("append miss", () => c.append("nokey", "zz"));
  await t("prepend miss", () => c.prepend("nokey", "zz"));
  await t("get after append", () => c.get("a"));
  await t("increment new with initial", () => c.increment("ctr", 5, { initial: 100 }));
  await t("increment", () => c.increment("ctr", 5, {}));
  await t("decrement", () => c.decrement("ctr", 7, {}));
  await t("decrement below zero", () => c.decrement("ctr", 1000, {}));
  await t("increment non-numeric", () => c.increment("a", 1, {}));
  await t("decrement new with initial", () => c.decrement("dctr", 1, { initial: 3 }));
  await t("delete", () => c.delete("b"));
  await t("delete miss", () => c.delete("b"));
  await t("touch", () => c.touch("a", 100));
  await t("touch miss", () => c.touch("nokey", 100));
  const bin = Buffer.alloc(1024, 0).map((_, i) => i & 255);
  await t("binary value", async () => { await c.set("binval", bin, {}); return (await c.get("binval")).value.equals(bin); });
  await t("utf-8 key", async () => { await c.set("ключ ✓", "значение", {}); return (await c.get("ключ ✓")).value.toString(); });
  await t("empty value", () => c.set("empty", "", {}).then(() => c.get("empty")));
  await t("32-bit flags", async () => {
    // memjs's serializer hook may write the flags (extras bytes 0-3)
    const ser = { serialize(op, value, extras) { extras.writeUInt32BE(0xdeadbeef, 0); return { value, extras }; },
                  deserialize(op, value, extras) { return { value, extras }; } };
    const f = memjs.Client.create(`127.0.0.1:${port}`, { timeout: 3, retries: 0, serializer: ser, logger: { log() {} } });
    await f.set("flagged", "v", {});
    const r = await f.get("flagged");
    f.close();
    return r.flags.toString("hex");
  });
  const big = Buffer.alloc(500000, "x");
  await t("set 500 KB", () => c.set("big", big, {}));
  await t("get 500 KB", async () => (await c.get("big")).value.equals(big));
  await t("set 1 MB + 1", () => c.set("huge", Buffer.alloc(1024 * 1024 + 1, "h"), {}));
  await t("get after too large", () => c.get("huge"));
  await t("server still answers", () => c.get("a"));
  // many concurrent requests on one connection: replies matched by opaque
  await t("500 concurrent sets", async () => (await Promise.all(
    Array.from({ length: 500 }, (_, i) => c.set(`m:${i}`, `v${i}`, {})))).every((x) => x === true));
  await t("500 concurrent gets", async () => (await Promise.all(
    Array.from({ length: 500 }, (_, i) => c.get(`m:${i}`)))).every((r, i) => r.value.toString() === `v${i}`));
  await t("set ttl 3", () => c.set("exp", "soon", { expires: 3 }));
  await c.set("exp-touched", "later", { expires: 3 });
  await c.touch("exp-touched", 100);
  await t("get before expiry", async () => (await c.get("exp")).value.toString());
  await sleep(4100);
  await t("get after expiry", () => c.get("exp"));
  await t("touched survives", async () => (await c.get("exp-touched")).value.toString());
  await t("stats", () => new Promise((res) => c.stats((err, srv, st) =>
    res(err ? "error: " + err.message : ["pid", "curr_items", "cmd_get"].every((k) => k in st)))));
  await t("flush", async () => Object.values(await c.flush()));
  await t("get after flush", () => c.get("a"));
  c.quit();
}
(async () => {
  if (process.argv[3]) await sasl(process.argv[3], process.argv[4]);
  else await ops(mk(""));
  console.log(out.join("\n"));
})().catch((e) => { console.error(e); process.exit(1); });
