/**
 * A typed client for Job Handler's HTTP API: openapi-fetch over the types openapi-typescript
 * generates from the server's OpenAPI description (src/schema.ts; ./generate.sh remakes it).
 * Every path, parameter, body and answer is checked by tsc against that description.
 */
import createClient, { type Client, type ClientOptions } from "openapi-fetch";

import type { components, operations, paths } from "./schema.js";

export type { components, operations, paths };
export type Job = components["schemas"]["JobOut"];
export type JobStatus = components["schemas"]["JobStatus"];
export type JobHandlerClient = Client<paths>;

/** Statuses a job leaves only by a retry: `GET /jobs/{id}?wait=` returns once the job has one. */
export const FINISHED: readonly JobStatus[] = ["completed", "failed", "cancelled"];

export interface Options extends Omit<ClientOptions, "baseUrl"> {
  /** The server, e.g. "http://127.0.0.1:8080" (a path prefix, behind a proxy, is kept). */
  baseUrl: string;
  /** An API token (`jobhandler token create`), sent as `Authorization: Bearer <token>`. */
  token?: string;
}

/** A client for the server at `baseUrl`; each call answers `{ data }` or `{ error }` (problem JSON). */
export function createJobHandlerClient({ baseUrl, token, headers, ...rest }: Options): JobHandlerClient {
  const auth = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  return createClient<paths>({ baseUrl, headers: { ...auth, ...headers }, ...rest });
}

/**
 * Wait until the job is finished or `timeoutSeconds` have passed, and answer it as it then is.
 * The server holds each `GET /jobs/{id}?wait=N` (N at most 60) until the job finishes, so this
 * polls only once a minute however long the job runs.
 */
export async function waitForJob(
  client: JobHandlerClient,
  jobId: string,
  timeoutSeconds = 60,
): Promise<Job> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    const left = Math.max(0, Math.min(60, (deadline - Date.now()) / 1000));
    const { data, error, response } = await client.GET("/jobs/{job_id}", {
      params: { path: { job_id: jobId }, query: { wait: left } },
    });
    if (data === undefined) {
      throw new Error(`GET /jobs/${jobId}: ${response.status} ${error?.error ?? ""}`.trim());
    }
    if (FINISHED.includes(data.status) || Date.now() >= deadline) {
      return data;
    }
  }
}
