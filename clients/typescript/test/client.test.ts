/**
 * The client against a real server: `jobhandler serve` (API and worker) on a SQLite file in a
 * temporary folder, with a token made by the real CLI. The repository's .venv provides
 * `jobhandler` ($JOBHANDLER_BIN overrides it).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { createJobHandlerClient, waitForJob, type JobHandlerClient } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url)); // dist/test
const jobhandler = process.env.JOBHANDLER_BIN ?? resolve(here, "../../../../.venv/bin/jobhandler");
const folder = mkdtempSync(join(tmpdir(), "jobhandler-ts-"));
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("JOBHANDLER_"))),
  JOBHANDLER_DATABASE_URL: `sqlite:///${join(folder, "jobs.db")}`,
  JOBHANDLER_DEMO_DELAY: "0.05", // the demo app's default task, reverse, waits this long
};

let server: ChildProcess | undefined;
let baseUrl = "";
let token = "";
let client: JobHandlerClient;

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer().once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? done(address.port) : fail()));
    });
  });
}

/** Poll `check` until it is true, for at most `seconds`; each poll waits `every` ms first. */
async function until(seconds: number, check: () => Promise<boolean>, every = 50): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not ready within ${seconds} s`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Start `serve` on a free port; another process may take the port first, so try again. */
async function startServer(log: string): Promise<void> {
  for (let tries = 0; tries < 3; tries++) {
    const port = await freePort();
    const out = openSync(log, "a");
    const proc = spawn(jobhandler, ["serve", "--port", String(port)], {
      env, stdio: ["ignore", out, out],
    });
    server = proc;
    baseUrl = `http://127.0.0.1:${port}`;
    const ready = async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return true;
      const answer = await fetch(`${baseUrl}/readyz`).catch(() => undefined);
      return answer?.status === 200;
    };
    await until(30, ready);
    if (proc.exitCode === null && proc.signalCode === null) return;
  }
  throw new Error(`serve did not start:\n${readFileSync(log, "utf8")}`);
}

async function stopServer(): Promise<void> {
  const proc = server;
  if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((done) => proc.once("exit", done));
  proc.kill("SIGTERM");
  const killer = setTimeout(() => proc.kill("SIGKILL"), 10_000); // a graceful stop is bounded
  await exited;
  clearTimeout(killer);
}

before(async () => {
  const created = execFileSync(jobhandler, ["token", "create", "--scope", "admin", "--name", "ts"], {
    env, encoding: "utf8", timeout: 30_000,
  });
  token = created.trim().split("\n").at(-1) ?? ""; // the token is the last line printed
  await startServer(join(folder, "serve.log"));
  client = createJobHandlerClient({ baseUrl, token });
});

after(async () => {
  await stopServer();
  rmSync(folder, { recursive: true, force: true });
});

test("submit a job, wait for it, find it in the list", async () => {
  const submitted = await client.POST("/jobs", { body: { payload: "hello" } });
  assert.equal(submitted.response.status, 201, JSON.stringify(submitted.error));
  const job = submitted.data!;
  assert.equal(job.task, "reverse");

  const done = await waitForJob(client, job.id, 30);
  assert.equal(done.status, "completed");
  assert.equal(done.result, "olleh");

  const listed = await client.GET("/jobs", { params: { query: { status: ["completed"] } } });
  assert.equal(listed.response.status, 200);
  assert.ok(listed.data!.some((j) => j.id === job.id));
});

test("a delayed job is cancelled before it runs", async () => {
  const submitted = await client.POST("/jobs", {
    body: { task: "reverse", payload: "later", delay: 3600 },
  });
  assert.equal(submitted.response.status, 201, JSON.stringify(submitted.error));
  assert.equal(submitted.data!.status, "scheduled");

  const cancelled = await client.POST("/jobs/{job_id}/cancel", {
    params: { path: { job_id: submitted.data!.id } },
  });
  assert.equal(cancelled.response.status, 200);
  assert.equal(cancelled.data!.status, "cancelled");

  const again = await client.POST("/jobs/{job_id}/cancel", {
    params: { path: { job_id: submitted.data!.id } },
  });
  assert.equal(again.response.status, 409); // finished: the error is problem JSON
  assert.match(again.error!.error, /cannot be cancelled/);
});

test("a request without the token, or with a wrong one, is refused with 401", async () => {
  for (const anonymous of [
    createJobHandlerClient({ baseUrl }),
    createJobHandlerClient({ baseUrl, token: "jh_not-a-token" }),
  ]) {
    const { data, error, response } = await anonymous.GET("/jobs");
    assert.equal(response.status, 401);
    assert.equal(data, undefined);
    assert.ok(error!.error);
  }
});

test("the README's example runs as written and is the one tsc checks", async () => {
  const readme = readFileSync(resolve(here, "../../README.md"), "utf8");
  const example = readFileSync(resolve(here, "../../examples/quickstart.ts"), "utf8");
  assert.ok(readme.includes("```ts\n" + example + "```\n"), "README.md's example is examples/quickstart.ts");

  const { stdout } = await promisify(execFile)("node", [resolve(here, "../examples/quickstart.js")], {
    env: { ...process.env, JOBHANDLER_URL: baseUrl, JOBHANDLER_TOKEN: token },
    timeout: 30_000,
  });
  const lines = stdout.trim().split("\n");
  assert.equal(lines[0], "completed olleh");
  assert.equal(lines.at(-1), "cancelled");
});
