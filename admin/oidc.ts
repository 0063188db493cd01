import type * as OpenIdClient from 'openid-client';
import type { AdminIdentity, AdminRole } from './auth.js';

// Single sign-on for the admin UI: OpenID Connect, authorization code flow with PKCE, through
// openid-client (a maintained, certified relying party; nothing of the protocol is hand-written
// here). The provider's metadata is discovered on first use and kept, so Ferry starts even when
// the provider is down; a failed discovery is tried again at the next login.
//
// The flow's secrets (state, nonce, PKCE verifier) travel in a short-lived HttpOnly cookie of the
// browser that started the login. NB the callback is a cross-site top-level navigation from the
// provider, so that cookie is SameSite=Lax (Strict would not be sent and every login would fail
// as "tampered").

export interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret?: string;
  allowedEmails: readonly string[];
  groupsClaim?: string;
  adminGroups: readonly string[];
  readonlyGroups: readonly string[];
}

export class OidcRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OidcRefused';
  }
}

/** What the flow cookie holds. */
export interface OidcFlow {
  state: string;
  nonce: string;
  verifier: string;
}

export function encodeFlow(f: OidcFlow): string {
  return Buffer.from(JSON.stringify(f)).toString('base64url');
}

export function decodeFlow(v: string | undefined): OidcFlow | undefined {
  if (!v || v.length > 1000) return undefined;
  try {
    const f = JSON.parse(Buffer.from(v, 'base64url').toString()) as Partial<OidcFlow>;
    return typeof f.state === 'string' && typeof f.nonce === 'string' && typeof f.verifier === 'string' ? (f as OidcFlow) : undefined;
  } catch {
    return undefined;
  }
}

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * The issuer URL, checked: https, or http on a loopback address only (a provider on the same
 * machine, as in the tests); plain http across a network would hand codes and tokens to anyone
 * on the path.
 */
export function checkIssuer(issuer: string): URL {
  const u = new URL(issuer);
  if (u.protocol === 'https:') return u;
  if (u.protocol === 'http:' && LOOPBACK.has(u.hostname)) return u;
  throw new Error(`admin.oidc.issuer: read ${issuer}; the issuer must be an https:// URL (plain http is accepted for a loopback address only)`);
}

/** The role an ID token's claims give, or OidcRefused saying why none. */
export function roleFromClaims(s: OidcSettings, claims: Record<string, unknown>): AdminIdentity {
  const email = typeof claims.email === 'string' ? claims.email.toLowerCase() : undefined;
  // An address the provider has not verified proves nothing about who logged in.
  const verified = claims.email_verified !== false;
  const raw = s.groupsClaim ? claims[s.groupsClaim] : undefined;
  const groups = Array.isArray(raw) ? raw.filter((g): g is string => typeof g === 'string') : typeof raw === 'string' ? [raw] : [];
  const name = email ?? (typeof claims.sub === 'string' ? claims.sub : 'unknown');
  let role: AdminRole | undefined;
  if (email && verified && s.allowedEmails.some((e) => e.toLowerCase() === email)) role = 'admin';
  else if (groups.some((g) => s.adminGroups.includes(g))) role = 'admin';
  else if (groups.some((g) => s.readonlyGroups.includes(g))) role = 'readonly';
  if (!role) throw new OidcRefused(`${name} is not allowed into the admin UI: not in admin.oidc.allowedEmails${s.groupsClaim ? ' nor in a group of admin.oidc.adminGroups or admin.oidc.readonlyGroups' : ''}`);
  return { name: `sso:${name}`, role };
}

// openid-client (and jose under it) is loaded at the first sign-on, not when the admin side is
// imported: a Ferry without admin.oidc never pays its memory.
let clientModule: Promise<typeof OpenIdClient> | undefined;
const loadClient = (): Promise<typeof OpenIdClient> => (clientModule ??= import('openid-client'));

export class OidcLogin {
  private config?: Promise<OpenIdClient.Configuration>;
  private readonly issuer: URL;

  constructor(readonly settings: OidcSettings) {
    this.issuer = checkIssuer(settings.issuer);
  }

  private configuration(): Promise<OpenIdClient.Configuration> {
    this.config ??= loadClient()
      .then((client) => client.discovery(
        this.issuer,
        this.settings.clientId,
        this.settings.clientSecret,
        this.settings.clientSecret ? client.ClientSecretBasic(this.settings.clientSecret) : client.None(),
        this.issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {},
      ))
      .catch((err: unknown) => {
        this.config = undefined;
        throw err;
      });
    return this.config;
  }

  /** Where to send the browser, and the flow to keep in its cookie. */
  async start(redirectUri: string): Promise<{ url: string; flow: OidcFlow }> {
    const [client, config] = [await loadClient(), await this.configuration()];
    const flow: OidcFlow = { state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier() };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile',
      code_challenge: await client.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: 'S256',
      state: flow.state,
      nonce: flow.nonce,
    });
    return { url: url.href, flow };
  }

  /**
   * Redeems the code of the callback URL: openid-client checks the state against the flow's,
   * the PKCE verifier, the ID token's signature, issuer, audience, expiry and nonce. Throws on
   * any mismatch; OidcRefused when the user is valid but not allowed in.
   */
  async finish(callbackUrl: URL, flow: OidcFlow): Promise<AdminIdentity> {
    const [client, config] = [await loadClient(), await this.configuration()];
    const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims();
    if (!claims) throw new OidcRefused('the provider sent no ID token');
    return roleFromClaims(this.settings, claims as Record<string, unknown>);
  }

  /** The provider's logout URL (RP-initiated logout), or undefined when it has none. */
  async logoutUrl(postLogoutRedirectUri: string): Promise<string | undefined> {
    try {
      const [client, config] = [await loadClient(), await this.configuration()];
      if (!config.serverMetadata().end_session_endpoint) return undefined;
      return client.buildEndSessionUrl(config, { client_id: this.settings.clientId, post_logout_redirect_uri: postLogoutRedirectUri }).href;
    } catch {
      return undefined;
    }
  }
}
