/**
 * The load generator, run in its own process (child_process.fork) so it does
 * not share an event loop with the server it measures. It receives one job
 * per message and answers with autocannon's figures.
 *
 * Each of the `connections` keep-alive connections sends the cookie of its
 * own session, so no two connections ever touch the same session.
 */
import autocannon from 'autocannon';

function run(job) {
  let next = 0;
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: job.origin,
        connections: job.connections,
        duration: job.seconds,
        pipelining: 1,
        timeout: 10,
        requests: [
          {
            method: 'GET',
            path: job.path,
            // autocannon deep-copies the request per connection and keeps the headers object we
            // fill here across that connection's requests: the first call fixes its session.
            setupRequest: (request) => {
              if (request.headers.cookie === undefined) request.headers.cookie = job.cookies[next++ % job.cookies.length];
              return request;
            },
          },
        ],
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

process.on('message', async (job) => {
  try {
    const result = await run(job);
    process.send({
      ok: true,
      result: {
        seconds: result.duration,
        total: result.requests.total,
        reqPerSec: result.requests.total / result.duration,
        reqPerSecAverage: result.requests.average,
        latency: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, average: result.latency.average, max: result.latency.max },
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
      },
    });
  } catch (error) {
    process.send({ ok: false, error: String(error?.stack ?? error) });
  }
});

process.send({ ready: true });
