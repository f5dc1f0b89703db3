import { createJobHandlerClient, waitForJob } from "jobhandler-client";

const client = createJobHandlerClient({
  baseUrl: process.env.JOBHANDLER_URL ?? "http://127.0.0.1:8080",
  token: process.env.JOBHANDLER_TOKEN, // `jobhandler token create --scope admin --name my-service`
});

// Submit: tsc checks the body against the app's tasks (here the demo app's default task, reverse).
const submitted = await client.POST("/jobs", { body: { payload: "hello" } });
if (submitted.error) throw new Error(submitted.error.error); // problem JSON: error, detail, status
const job = submitted.data;

// Wait: each GET /jobs/{id}?wait=N is held by the server until the job is finished (N <= 60 s).
const done = await waitForJob(client, job.id, 30);
console.log(done.status, done.result); // completed olleh

// List: newest first, filtered like GET /jobs (status may repeat).
const listed = await client.GET("/jobs", { params: { query: { status: ["completed"], limit: 10 } } });
console.log(listed.data?.map((j) => j.id));

// Cancel: a job due in an hour is cancelled at once; a finished one answers 409.
const later = await client.POST("/jobs", { body: { payload: "later", delay: 3600 } });
if (later.error) throw new Error(later.error.error);
const cancelled = await client.POST("/jobs/{job_id}/cancel", {
  params: { path: { job_id: later.data.id } },
});
console.log(cancelled.data?.status); // cancelled
