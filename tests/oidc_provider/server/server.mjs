// An oidc-provider 8.x (OpenID Certified) server for msal_async's interop tests.
//
// Started by tests/oidc_provider/conftest.py; not for production use.
//
//   node server.mjs [port]
//
// Environment:
//   OIDC_FIXTURE_PORT     port on 127.0.0.1 (argv[2] wins; 0 or unset picks a free port)
//   OIDC_FIXTURE_CERT     PEM certificate chain for HTTPS (required)
//   OIDC_FIXTURE_KEY      PEM private key for HTTPS (required)
//   OIDC_FIXTURE_CONFIG   path of a JSON file: {clients, resource_servers, scopes, ttl}
//   OIDC_FIXTURE_ADMIN    bearer token guarding POST /__fixture/clients (adds a client at run time)
//   OIDC_FIXTURE_PATH     the issuer's path (default /oidc)
//
// Prints one line "READY <issuer>" on stdout once it accepts connections. The issuer is
// https://127.0.0.1:<port>/oidc: msal's oidc_authority= needs at least one path segment (its
// canonicalize() rejects a bare host), and fetches {oidc_authority}/.well-known/openid-configuration,
// so oidc_authority=<issuer> works and the issuer check is an exact match.
import { generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

import Provider, { errors } from 'oidc-provider';

const env = process.env;
const port = Number(process.argv[2] ?? env.OIDC_FIXTURE_PORT ?? 0);
const config = env.OIDC_FIXTURE_CONFIG
  ? JSON.parse(readFileSync(env.OIDC_FIXTURE_CONFIG, 'utf8'))
  : {};
const adminToken = env.OIDC_FIXTURE_ADMIN || '';
const resourceServers = config.resource_servers ?? {};
const mountPath = (env.OIDC_FIXTURE_PATH ?? '/oidc').replace(/\/+$/, '');

// ---- storage: an in-memory adapter with no eviction (oidc-provider's own is a 1000-entry LRU) --

const store = new Map(); // key -> {payload, expiresAt}
const now = () => Math.floor(Date.now() / 1000);
const grantable = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest',
]);

function get(key) {
  const entry = store.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt && entry.expiresAt <= now()) {
    store.delete(key);
    return undefined;
  }
  return entry.payload;
}

function set(key, payload, expiresIn) {
  store.set(key, { payload, expiresAt: expiresIn ? now() + expiresIn : undefined });
}

class MapAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') set(`sessionUid:${payload.uid}`, id, expiresIn);
    if (grantable.has(this.model) && payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      const members = get(grantKey) ?? [];
      members.push(key);
      set(grantKey, members, expiresIn);
    }
    if (payload.userCode) set(`userCode:${payload.userCode}`, id, expiresIn);
    set(key, payload, expiresIn);
  }

  async find(id) { return get(this.key(id)); }

  async findByUid(uid) { return this.find(get(`sessionUid:${uid}`)); }

  async findByUserCode(userCode) { return this.find(get(`userCode:${userCode}`)); }

  async consume(id) {
    const payload = get(this.key(id));
    if (payload) payload.consumed = now();
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    for (const key of get(`grant:${grantId}`) ?? []) store.delete(key);
    store.delete(`grant:${grantId}`);
  }
}

// Clients live in the adapter (not the static `clients` option) so that the admin endpoint can
// add more while the server runs; each is validated by oidc-provider before it is stored.
async function addClient(provider, metadata) {
  await provider.Client.validate(metadata);
  await new MapAdapter('Client').upsert(metadata.client_id, metadata);
}

// ---- signing keys: one fresh RSA key per run (oidc-provider's dev keys log a warning) ---------

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'fixture-rs256', use: 'sig', alg: 'RS256' };

// ---- accounts: any username signs in; claims derive from it ----------------------------------

async function findAccount(ctx, sub) {
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        name: sub.charAt(0).toUpperCase() + sub.slice(1),
        preferred_username: `${sub}@example.test`,
        email: `${sub}@example.test`,
        email_verified: true,
      };
    },
  };
}

// ---- the provider -------------------------------------------------------------------------------

function buildProvider(issuer) {
  const ttl = config.ttl ?? {};
  return new Provider(issuer, {
    adapter: MapAdapter,
    jwks: { keys: [signingJwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    findAccount,
    scopes: config.scopes ?? ['openid', 'offline_access', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    // Per-client knobs for tests, carried in the client metadata:
    //   x_default_resource: resource indicator used when the request names none (msal never
    //                       sends `resource`), so its access tokens are JWTs for that API.
    //   x_access_token_ttl: access token lifetime in seconds for this client.
    extraClientMetadata: {
      properties: ['x_default_resource', 'x_access_token_ttl'],
      validator(ctx, key, value) {
        if (value === undefined) return;
        if (key === 'x_default_resource' && !(typeof value === 'string' && value in resourceServers)) {
          throw new errors.InvalidClientMetadata(`${key} must name one of the configured resource_servers`);
        }
        if (key === 'x_access_token_ttl' && !(Number.isInteger(value) && value > 0)) {
          throw new errors.InvalidClientMetadata(`${key} must be a positive integer`);
        }
      },
    },
    ttl: {
      AccessToken(ctx, token, client) {
        return client?.x_access_token_ttl ?? token.resourceServer?.accessTokenTTL ?? ttl.AccessToken ?? 3600;
      },
      ClientCredentials(ctx, token, client) {
        return client?.x_access_token_ttl ?? token.resourceServer?.accessTokenTTL ?? ttl.ClientCredentials ?? 3600;
      },
      AuthorizationCode: ttl.AuthorizationCode ?? 60,
      DeviceCode: ttl.DeviceCode ?? 600,
      IdToken: ttl.IdToken ?? 3600,
      RefreshToken: ttl.RefreshToken ?? 14 * 24 * 60 * 60,
      Grant: ttl.Grant ?? 14 * 24 * 60 * 60,
      Interaction: ttl.Interaction ?? 3600,
      Session: ttl.Session ?? 14 * 24 * 60 * 60,
    },
    features: {
      devInteractions: { enabled: true }, // plain HTML login and consent forms
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf;
          return client.x_default_resource;
        },
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(ctx, resourceIndicator) {
          const info = resourceServers[resourceIndicator];
          if (!info) throw new errors.InvalidTarget(`unknown resource ${resourceIndicator}`);
          return { accessTokenFormat: 'jwt', ...info };
        },
      },
    },
  });
}

// ---- admin endpoint: POST /__fixture/clients with a JSON client metadata body ---------------

function authorized(req) {
  const given = Buffer.from(req.headers.authorization ?? '');
  const expected = Buffer.from(`Bearer ${adminToken}`);
  return adminToken !== '' && given.length === expected.length && timingSafeEqual(given, expected);
}

async function admin(provider, req, res) {
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method !== 'POST' || !authorized(req)) return reply(403, { error: 'forbidden' });
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  try {
    const metadata = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    await addClient(provider, metadata);
    return reply(201, { client_id: metadata.client_id });
  } catch (err) {
    return reply(400, { error: err.error ?? 'invalid_request', error_description: err.error_description ?? err.message });
  }
}

// ---- serve ----------------------------------------------------------------------------------

let provider;
let callback;
const server = createServer(
  { cert: readFileSync(env.OIDC_FIXTURE_CERT), key: readFileSync(env.OIDC_FIXTURE_KEY) },
  (req, res) => {
    if (req.url === '/__fixture/clients') {
      admin(provider, req, res);
    } else if (req.url.startsWith(`${mountPath}/`)) {
      // mounted as Express would: oidc-provider derives the mount path from originalUrl
      req.originalUrl = req.url;
      req.url = req.url.slice(mountPath.length);
      callback(req, res);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  },
);

server.listen(port, '127.0.0.1', async () => {
  const issuer = `https://127.0.0.1:${server.address().port}${mountPath}`;
  provider = buildProvider(issuer);
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  for (const metadata of config.clients ?? []) await addClient(provider, metadata);
  callback = provider.callback();
  console.log(`READY ${issuer}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
