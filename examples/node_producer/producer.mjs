// A Node.js service enqueueing jobwire jobs and reading their results, using nothing but
// wire/SPEC.md: a JSON envelope (§3), the enqueue script of §12.3 (enqueue.lua, its exact
// source) and the result wait of §12.4. Usage: REDIS_URL=redis://127.0.0.1:6379/0 node producer.mjs
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createClient } from "redis";

const ENQUEUE_LUA = readFileSync(new URL("./enqueue.lua", import.meta.url), "utf8");
let enqueueSha = null;

const PREFIX = process.env.JOBWIRE_PREFIX ?? "jobwire";
const QUEUE = process.env.JOBWIRE_QUEUE ?? "default";
const base = `${PREFIX}:{${QUEUE}}:`;
// W3C trace context of the caller (a Python worker continues the trace in its span)
const TRACEPARENT = process.env.TRACEPARENT
  ?? `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`;

/** Enqueue function(...args) as a JSON job; returns its id. */
async function enqueue(redis, fn, args = [], kwargs = {}, headers = {}) {
  const id = randomUUID().replaceAll("-", "");
  const envelope = {
    v: "1.0", fmt: "json", id, function: fn, queue: QUEUE, try: 1,
    enqueued_ms: Date.now(), headers, args, kwargs,
  };
  // the script checks the id and stores the job atomically (SPEC §12.3); 1 means queued
  const keys = ["job:", "stream", "deferred", "wake", "results:", "done:"]
    .map((k) => base + k + (k.endsWith(":") ? id : ""));
  const argv = [id, JSON.stringify(envelope), "", "", "0", randomBytes(8).toString("hex")];
  const queued = await evalEnqueue(redis, keys, argv);
  if (queued !== 1) throw new Error(`job ${id}: not enqueued (${queued})`);
  await redis.sAdd(`${PREFIX}:queues`, QUEUE);
  return id;
}

/** EVALSHA the enqueue script, loading it first and again after NOSCRIPT (a restarted Redis). */
async function evalEnqueue(redis, keys, args) {
  for (let attempt = 1; ; attempt++) {
    enqueueSha ??= await redis.scriptLoad(ENQUEUE_LUA);
    try {
      return await redis.evalSha(enqueueSha, { keys, arguments: args });
    } catch (err) {
      if (attempt > 1 || !String(err?.message).startsWith("NOSCRIPT")) throw err;
      enqueueSha = null;  // the failed call had no effect: load the script and call again
    }
  }
}

/** Wait for a job's final result (SPEC §12.4): no polling, a blocking BLMOVE on its done list. */
async function result(redis, id, timeoutSeconds = 30) {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    // stored: in the index while queued without a hash, then as a hash (SPEC §12.1)
    const index = `${base}queued:${createHash("sha1").update(id).digest("hex").slice(0, 2)}`;
    const stored = (await redis.hGet(index, id)) !== null || (await redis.exists(`${base}job:${id}`));
    if (!stored) {
      const latest = await redis.lIndex(`${base}results:${id}`, 0);
      if (latest === null) throw new Error(`job ${id}: no result kept`);
      return JSON.parse(latest);
    }
    const left = (deadline - Date.now()) / 1000;
    if (left <= 0) throw new Error(`job ${id}: no result within ${timeoutSeconds}s`);
    const done = `${base}done:${id}`;
    await redis.blMove(done, done, "RIGHT", "LEFT", Math.min(left, 4));
  }
}

const redis = createClient({ url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379/0" });
await redis.connect();
const jobs = [
  ["add", [2, 3]],
  ["add", [40, 2]],
  ["greet", ["Node"], { punctuation: "!" }],
  ["fail", ["from node"]],
];
const ids = [];
for (const [fn, args, kwargs] of jobs) {
  ids.push(await enqueue(redis, fn, args, kwargs ?? {}, { traceparent: TRACEPARENT }));
}
for (const id of ids) {
  const r = await result(redis, id);
  // a failed job's error record is readable here: type, message, traceback, cause
  console.log(JSON.stringify({ id, function: r.function, outcome: r.outcome, value: r.value ?? null,
                               error: r.error ?? null }));
}
await redis.quit();
