/**
 * A TCP proxy on loopback in front of a PostgreSQL server (or PgBouncer)
 * that reads the protocol going by: which statements each connection
 * prepares (Parse) and runs (Bind), named or not, and which SQLSTATEs the
 * server answers with. What the store really sends, seen on the wire, with
 * the real server behind: no driver is replaced.
 *
 * It reads the protocol 3.0 as `pg` speaks it without TLS (the client's
 * first message untyped, every other one a type byte and a length).
 */
import net from 'node:net';

/** One message of interest, in the order it went by. */
export type WireEvent =
  /** Parse: a statement prepared, named (`name` not empty) or unnamed. */
  | { readonly kind: 'parse'; readonly connection: number; readonly name: string; readonly text: string }
  /** Bind: a prepared statement run (`name` empty for the unnamed one). */
  | { readonly kind: 'bind'; readonly connection: number; readonly name: string }
  /** Query: a statement in the simple protocol (BEGIN, COMMIT, statements without parameters). */
  | { readonly kind: 'query'; readonly connection: number; readonly text: string }
  /** ErrorResponse from the server, with its SQLSTATE. */
  | { readonly kind: 'error'; readonly connection: number; readonly code: string; readonly message: string };

export interface PgWireTap {
  readonly port: number;
  /** Everything seen so far, every connection's, in order. */
  readonly events: WireEvent[];
  /** `url` with its host and port turned to the tap's. */
  urlThrough(url: string): string;
  /** Stops listening and drops every open connection. */
  close(): Promise<void>;
}

/** A NUL-terminated string of `body` at `offset`, and the offset after it. */
function cstring(body: Buffer, offset: number): [string, number] {
  const end = body.indexOf(0, offset);
  return [body.toString('utf8', offset, end), end + 1];
}

/** Splits a stream into messages: `(type, body)`; the first one untyped when `startup` (the client's StartupMessage). */
function framer(startup: boolean, onMessage: (type: string, body: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  let untyped = startup;
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      if (untyped) {
        if (pending.length < 8) return;
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        const code = pending.readInt32BE(4);
        // SSLRequest, GSSENCRequest: the server answers with one unframed byte, which this reader does not follow.
        if (code === 80877103 || code === 80877104) throw new Error('the wire tap reads no TLS: connect without ssl');
        pending = pending.subarray(length);
        untyped = false;
        continue;
      }
      if (pending.length < 5) return;
      const length = pending.readInt32BE(1);
      if (pending.length < 1 + length) return;
      onMessage(String.fromCharCode(pending[0] as number), pending.subarray(5, 1 + length));
      pending = pending.subarray(1 + length);
    }
  };
}

/** Starts a tap in front of `targetPort`. */
export async function startPgWireTap(targetPort: number, targetHost = '127.0.0.1'): Promise<PgWireTap> {
  const events: WireEvent[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((client) => {
    const connection = ++connections;
    const upstream = net.connect(targetPort, targetHost);
    sockets.add(client).add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    const fromClient = framer(true, (type, body) => {
      if (type === 'P') {
        const [name, next] = cstring(body, 0);
        events.push({ kind: 'parse', connection, name, text: cstring(body, next)[0] });
      } else if (type === 'B') {
        const [, next] = cstring(body, 0);
        events.push({ kind: 'bind', connection, name: cstring(body, next)[0] });
      } else if (type === 'Q') {
        events.push({ kind: 'query', connection, text: cstring(body, 0)[0] });
      }
    });
    const fromServer = framer(false, (type, body) => {
      if (type !== 'E') return;
      const fields = new Map<string, string>();
      for (let offset = 0; offset < body.length && body[offset] !== 0; ) {
        const field = String.fromCharCode(body[offset] as number);
        const [value, next] = cstring(body, offset + 1);
        fields.set(field, value);
        offset = next;
      }
      events.push({ kind: 'error', connection, code: fields.get('C') ?? '', message: fields.get('M') ?? '' });
    });
    client.on('data', fromClient);
    upstream.on('data', fromServer);
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    events,
    urlThrough(url) {
      const through = new URL(url);
      through.hostname = '127.0.0.1';
      through.port = String(port);
      return through.toString();
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      await closed;
    },
  };
}
