// A real Better Auth server with the jwt() plugin, for todo-api's tests.
//
//   node server.mjs [PORT]
//
// Listens on 127.0.0.1:PORT (argv[2], else $PORT, else a free port) and
// prints "READY http://127.0.0.1:PORT" once it accepts requests. Settings
// come from the environment:
//
//   BA_DB                  SQLite file (default: a new temp dir); reusing a
//                          file keeps users and keys across restarts
//   BA_SECRET              Better Auth secret (encrypts the private keys)
//   BA_ALG                 key algorithm: EdDSA (default), ES256, ES512,
//                          RS256 or PS256 (jwks.keyPairConfig)
//   BA_ISSUER, BA_AUDIENCE jwt.issuer / jwt.audience (audience: comma list);
//                          default: the base URL, as Better Auth does
//   BA_EXPIRATION          jwt.expirationTime, e.g. "15m", "2s" (default 15m)
//   BA_ROTATION_INTERVAL   jwks.rotationInterval in seconds: a key older than
//                          this is replaced by a new one at the next signing
//   BA_GRACE_PERIOD        jwks.gracePeriod in seconds: how long a rotated-out
//                          key stays published in the JWKS (default 30 days)
//   BA_EXIT_ON_STDIN_EOF   "1": exit when stdin closes
//
// Endpoints used by the tests are Better Auth's own under /api/auth:
// POST /sign-up/email, GET /token (JWT for the session), GET /jwks.
import { mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";

import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins/jwt";

const env = process.env;
const port = Number(process.argv[2] ?? env.PORT ?? 0);
const host = "127.0.0.1";

// The port must be known before Better Auth starts (it is the base URL and
// default issuer), so a free one is picked first when none is given.
async function freePort() {
	const probe = createServer();
	await new Promise((resolve) => probe.listen(0, host, resolve));
	const { port } = probe.address();
	await new Promise((resolve) => probe.close(resolve));
	return port;
}

const keyPairConfigs = {
	EdDSA: { alg: "EdDSA", crv: "Ed25519" },
	ES256: { alg: "ES256" },
	ES512: { alg: "ES512" },
	RS256: { alg: "RS256", modulusLength: 2048 },
	PS256: { alg: "PS256", modulusLength: 2048 },
};
const alg = env.BA_ALG || "EdDSA";
if (!keyPairConfigs[alg]) {
	console.error(`BA_ALG=${alg}: want one of ${Object.keys(keyPairConfigs).join(", ")}`);
	process.exit(2);
}
const seconds = (name) => (env[name] ? Number(env[name]) : undefined);

const listenPort = port || (await freePort());
const baseURL = `http://${host}:${listenPort}`;
const dbFile = env.BA_DB || join(mkdtempSync(join(tmpdir(), "betterauth-")), "auth.db");
const audience = env.BA_AUDIENCE ? env.BA_AUDIENCE.split(",") : undefined;

const options = {
	baseURL,
	secret: env.BA_SECRET || "todo-api-test-secret-0123456789abcdef",
	database: new Database(dbFile),
	emailAndPassword: { enabled: true },
	telemetry: { enabled: false },
	rateLimit: { enabled: false },
	plugins: [
		jwt({
			jwks: {
				keyPairConfig: keyPairConfigs[alg],
				rotationInterval: seconds("BA_ROTATION_INTERVAL"),
				gracePeriod: seconds("BA_GRACE_PERIOD"),
			},
			jwt: {
				issuer: env.BA_ISSUER || undefined,
				audience: audience?.length === 1 ? audience[0] : audience,
				expirationTime: env.BA_EXPIRATION || "15m",
			},
		}),
	],
};

// Create or update the schema (user, session, account, verification, jwks)
// the way `npx @better-auth/cli migrate` does, but in-process.
const { runMigrations } = await getMigrations(options);
await runMigrations();

const auth = betterAuth(options);
const server = createServer(toNodeHandler(auth));
server.listen(listenPort, host, () => {
	console.log(`READY ${baseURL} db=${dbFile} alg=${alg}`);
});

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// With BA_EXIT_ON_STDIN_EOF=1 the server ends when its parent closes stdin,
// so a killed test run leaves no server behind.
if (env.BA_EXIT_ON_STDIN_EOF === "1") {
	process.stdin.on("end", () => process.exit(0));
	process.stdin.resume();
}
