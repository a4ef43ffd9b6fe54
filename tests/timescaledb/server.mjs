#!/usr/bin/env node
// Test tool: an in-memory PostgreSQL 17 with the TimescaleDB extension (PGlite, WASM) on a TCP
// port, for tests/test_timescaledb_wasm.py. It serves one connection at a time (others queue).
// Why not pglite-socket's own CLI (pglite-server): it cannot load extensions, and three faults
// of PGlite and pglite-socket need mending below for a PostgreSQL client to see a PostgreSQL.
// Still unsupported: COPY ... FROM STDIN (PGlite aborts), background jobs (use CALL run_job).
import { writeFileSync, renameSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { PGlite } from '@electric-sql/pglite'
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketHandler, PGLiteSocketServer } from '@electric-sql/pglite-socket'

const HELP = `Usage: node server.mjs [--host 127.0.0.1] [--port 0] [--ready-file PATH]

  --host        address to listen on (default 127.0.0.1)
  --port        port to listen on; 0 picks a free one (default 0)
  --ready-file  once listening, write "host:port" to PATH (written whole, then renamed)

Prints "listening on host:port" when ready; SIGTERM or SIGINT stops it.`


function frontendMessage(type, body) {
  const payload = Buffer.from(body)
  const message = Buffer.alloc(5 + payload.length)
  message.write(type, 0)
  message.writeInt32BE(4 + payload.length, 1)
  payload.copy(message, 5)
  return new Uint8Array(message)
}

function simpleQuery(sql) {
  return frontendMessage('Q', `${sql}\0`)
}

// pglite-socket hands PGlite each TCP read as it comes, so a message longer than one read
// (64 KiB: a big INSERT, COPY data) reaches it cut in two and PGlite aborts ("unreachable").
// Hand it whole messages only: buffer a client's bytes until its messages are complete.
const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104

class MessageFramer {
  #chunks = []
  #size = 0
  #need = 0 // bytes the first incomplete message needs, when its length is known
  #typed = false // the startup packets carry no type byte; every later message does

  /** The complete messages received so far, or null when none is complete yet. */
  push(chunk) {
    this.#chunks.push(chunk)
    this.#size += chunk.length
    if (this.#size < this.#need) return null
    const bytes = Buffer.concat(this.#chunks, this.#size)
    let end = 0
    this.#need = 0
    for (;;) {
      const header = this.#typed ? 1 : 0
      if (bytes.length - end < header + 4) break
      const size = header + bytes.readInt32BE(end + header)
      if (bytes.length - end < size) {
        this.#need = size
        break
      }
      if (!this.#typed) {
        const code = bytes.readInt32BE(end + 4)
        this.#typed = code !== SSL_REQUEST && code !== GSSENC_REQUEST
      }
      end += size
    }
    this.#chunks = end < bytes.length ? [bytes.subarray(end)] : []
    this.#size = bytes.length - end
    return end === 0 ? null : new Uint8Array(bytes.subarray(0, end))
  }
}

const handleData = PGLiteSocketHandler.prototype.handleData
const framers = new WeakMap()
PGLiteSocketHandler.prototype.handleData = function (chunk) {
  if (!framers.has(this)) framers.set(this, new MessageFramer())
  const messages = framers.get(this).push(chunk)
  return messages === null ? Promise.resolve(0) : handleData.call(this, messages)
}

const { values: args } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'ready-file': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
})
if (args.help) {
  console.log(HELP)
  process.exit(0)
}

const db = await PGlite.create('memory://', { extensions: { timescaledb } })
// PGlite runs the session in template1, whose pg_database row fails any later GRANT ON DATABASE
// with "tuple concurrently deleted" (PGlite 0.3.14) until it is rewritten once: a no-op ALTER.
await db.exec('ALTER DATABASE template1 ALLOW_CONNECTIONS true')
// PGlite has one session for every client; give each client a fresh one, as a new PostgreSQL
// backend would be, or prepared statements, settings, locks and open transactions leak between
// connections (psycopg's auto-prepared "_pg3_0" then collides). The socket server takes this lock
// once per client, before serving it. Sync ends a half-done extended query; RESET ALL (in DISCARD
// ALL) would leave search_path at PGlite's boot value, pg_catalog, so PGlite's own session
// settings (search_path = public) are set again after it.
const { rows: sessionSettings } = await db.query(
  "SELECT format('SELECT set_config(%L, %L, false)', name, setting) AS sql " +
    "FROM pg_settings WHERE source = 'session'",
)
const SESSION_RESET = [
  frontendMessage('S', ''),
  ...['ROLLBACK', 'DISCARD ALL', ...sessionSettings.map((row) => row.sql)].map(simpleQuery),
]
const runExclusive = db.runExclusive.bind(db)
db.runExclusive = (serve) =>
  runExclusive(async () => {
    for (const message of SESSION_RESET) await db.execProtocolRaw(message)
    return serve()
  })
const server = new PGLiteSocketServer({ db, host: args.host, port: Number(args.port) })
server.addEventListener('error', (event) => console.error('server error:', event.detail))
await server.start()

const address = server.getServerConn()
if (args['ready-file']) {
  // Rename so a reader polling for the file never sees it half written.
  writeFileSync(`${args['ready-file']}.tmp`, address)
  renameSync(`${args['ready-file']}.tmp`, args['ready-file'])
}
console.log(`listening on ${address}`)

let stopping = false
async function stop() {
  if (stopping) return
  stopping = true
  await server.stop()
  await db.close()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
