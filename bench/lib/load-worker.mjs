/**
 * The load generator, run in its own process (child_process.fork) so it does
 * not share an event loop with the server it measures. It receives one job
 * per message and answers with its figures.
 *
 * Two kinds of job:
 *
 * - autocannon (the default): closed loop, `connections` keep-alive
 *   connections each sending its next request when the previous one answered.
 *   Each connection sends the cookie of its own session, so no two connections
 *   ever touch the same session; with `rotateCookies` every request takes the
 *   next cookie instead (for more sessions than connections). `paths` (instead
 *   of `path`) cycles through several routes on each connection (without
 *   `rotateCookies`, each route of a connection then has a session of its own); `method`
 *   (default GET) is the requests' method.
 *
 * - `kind: 'paced'`: open loop, `rate` requests per second at evenly spaced
 *   instants whatever the server does, over `connections` keep-alive sockets
 *   opened before it starts and used in turn (set it well above what the rate
 *   needs, or requests queue in this process instead of reaching the server);
 *   request i goes to `paths[i % paths.length]` with cookie
 *   `cookies[i % cookies.length]`. A request's latency runs from the instant it
 *   was due, not from when a socket was free, so a stall of the server counts
 *   for every request that arrived during it (no coordinated omission). It runs
 *   for `seconds`, or until a `{ stop: true, windows }` message, and reports
 *   the latencies of the requests due within each window (epoch-ms pairs;
 *   without windows, the whole run after its first `settleMs`).
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';

function runAutocannon(job) {
  let next = 0;
  const paths = job.paths ?? [job.path];
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: job.origin,
        connections: job.connections,
        duration: job.seconds,
        pipelining: 1,
        timeout: 10,
        requests: paths.map((path) => ({
          // GET unless the job says otherwise (the frameworks section's writing requests are POSTs, without a body).
          method: job.method ?? 'GET',
          path,
          // autocannon deep-copies the request per connection and keeps the headers object we
          // fill here across that connection's requests: the first call fixes its session.
          setupRequest: (request) => {
            if (job.rotateCookies) return { ...request, headers: { ...request.headers, cookie: job.cookies[next++ % job.cookies.length] } };
            if (request.headers.cookie === undefined) request.headers.cookie = job.cookies[next++ % job.cookies.length];
            return request;
          },
        })),
      },
      (error, result) =>
        error
          ? reject(error)
          : resolve({
              seconds: result.duration,
              total: result.requests.total,
              reqPerSec: result.requests.total / result.duration,
              reqPerSecAverage: result.requests.average,
              latency: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, average: result.latency.average, max: result.latency.max },
              non2xx: result.non2xx,
              errors: result.errors,
              timeouts: result.timeouts,
            }),
    );
  });
}

/** The value at percentile `p` (0-100) of ascending `sorted`. */
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

const round2 = (v) => (v === null ? null : Math.round(v * 100) / 100);

/** Latency figures (ms) of the samples due in [from, to) (epoch ms). */
function summarize(samples, from, to) {
  const latencies = [];
  let non2xx = 0;
  let errors = 0;
  let answered = 0;
  let unanswered = 0;
  for (const s of samples) {
    if (s.status !== -1 && s.due + s.latency >= from && s.due + s.latency < to) answered++;
    if (s.due < from || s.due >= to) continue;
    if (s.status === -1) unanswered++;
    else if (s.status === 0) errors++;
    else if (s.status < 200 || s.status > 299) non2xx++;
    latencies.push(s.latency);
  }
  latencies.sort((a, b) => a - b);
  const sum = latencies.reduce((a, b) => a + b, 0);
  return {
    seconds: round2((to - from) / 1000),
    requests: latencies.length,
    // Requests due in the window (the offered load), and answers that arrived in it (what the server kept up with).
    reqPerSec: round2(latencies.length / Math.max(0.001, (to - from) / 1000)),
    answeredPerSec: round2(answered / Math.max(0.001, (to - from) / 1000)),
    latency: {
      p50: round2(percentile(latencies, 50)),
      p90: round2(percentile(latencies, 90)),
      p99: round2(percentile(latencies, 99)),
      average: round2(latencies.length === 0 ? null : sum / latencies.length),
      max: round2(latencies.at(-1) ?? null),
    },
    non2xx,
    errors,
    // Still unanswered when the run ended: counted with the time they had waited by then (a lower bound).
    unanswered,
  };
}

/** p99 per `bucketMs` slice of the run, for the record. */
function timeline(samples, from, to, bucketMs) {
  const out = [];
  for (let start = from; start < to; start += bucketMs) {
    const part = summarize(samples, start, Math.min(to, start + bucketMs));
    out.push({ atSeconds: round2((start - from) / 1000), requests: part.requests, p50: part.latency.p50, p99: part.latency.p99, max: part.latency.max });
  }
  return out;
}

let stopPaced;

/** One GET through `agent`; resolves when answered (or failed). */
function getOnce(agent, url, path, cookie) {
  return new Promise((resolve) => {
    const request = http.get({ agent, host: url.hostname, port: url.port, path, headers: { cookie }, timeout: 10_000 }, (response) => {
      response.resume();
      response.on('end', resolve);
      response.on('error', resolve);
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', resolve);
  });
}

async function runPaced(job) {
  // fifo: every open socket takes its turn, so none sits idle long enough for the server to close it.
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.connections, maxFreeSockets: job.connections, scheduling: 'fifo' });
  const pending = new Set();
  const url = new URL(job.origin);
  // Open every socket first: a stalled server then finds each request waiting on a connection it already
  // accepted, instead of hundreds of connections opened at once overflowing its listen backlog.
  await Promise.all(Array.from({ length: job.connections }, (_, i) => getOnce(agent, url, job.paths[0], job.cookies[i % job.cookies.length])));
  const samples = [];
  const intervalMs = 1000 / job.rate;
  const startedAt = performance.timeOrigin + performance.now();
  const t0 = performance.now();
  let issued = 0;
  let inFlight = 0;
  let stopped = false;
  let timer;
  let deadline;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));

  const issue = (dueAt) => {
    const i = issued++;
    const sample = { due: performance.timeOrigin + dueAt, latency: 0, status: 0 };
    let settled = false;
    inFlight++;
    pending.add(sample);
    const done = (status) => {
      if (settled) return;
      settled = true;
      pending.delete(sample);
      sample.latency = performance.now() - dueAt;
      sample.status = status;
      samples.push(sample);
      inFlight--;
      if (stopped && inFlight === 0) finish();
    };
    const request = http.get(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: job.paths[i % job.paths.length],
        headers: { cookie: job.cookies[i % job.cookies.length] },
        timeout: 10_000,
      },
      (response) => {
        response.resume();
        response.on('end', () => done(response.statusCode));
        response.on('error', () => done(0));
      },
    );
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', () => done(0));
  };

  const tick = () => {
    if (stopped) return;
    const now = performance.now();
    while (t0 + issued * intervalMs <= now) issue(t0 + issued * intervalMs);
    timer = setTimeout(tick, Math.max(0, t0 + issued * intervalMs - performance.now()));
  };

  const stop = (windows) => {
    if (stopped) return;
    stopped = true;
    clearTimeout(timer);
    clearTimeout(deadline);
    const endedAt = performance.timeOrigin + performance.now();
    // Requests still out get 10 s to answer (their own timeout), then the run reports anyway.
    const grace = setTimeout(finish, 11_000);
    if (inFlight === 0) finish();
    return finished.then(() => {
      clearTimeout(grace);
      const end = performance.timeOrigin + performance.now();
      for (const sample of pending) samples.push({ due: sample.due, latency: end - sample.due, status: -1 });
      agent.destroy();
      const all = windows ?? job.windows ?? { run: [startedAt + (job.settleMs ?? 0), endedAt] };
      const out = {};
      for (const [name, [from, to]] of Object.entries(all)) {
        out[name] = summarize(samples, from, to);
        if (job.timelineMs) out[name].timeline = timeline(samples, from, to, job.timelineMs);
      }
      return { startedAt, endedAt, rate: job.rate, issued, unanswered: pending.size, windows: out };
    });
  };

  const result = new Promise((resolve) => {
    // The first stop wins: the deadline's (default windows) or the parent's message (its windows).
    stopPaced = (windows) => stop(windows)?.then(resolve);
    deadline = setTimeout(() => stopPaced(), job.seconds * 1000);
  });
  tick();
  return result.finally(() => (stopPaced = undefined));
}

process.on('message', async (message) => {
  if (message?.stop) {
    // No paced run in progress (it reached its own deadline): nothing to stop.
    stopPaced?.(message.windows);
    return;
  }
  try {
    const result = message.kind === 'paced' ? await runPaced(message) : await runAutocannon(message);
    process.send({ ok: true, result });
  } catch (error) {
    process.send({ ok: false, error: String(error?.stack ?? error) });
  }
});

process.send({ ready: true });
