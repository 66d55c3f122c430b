/**
 * Google's OAuth 2.0 endpoints for an installed ("Desktop app") client, as documented in
 * "OAuth 2.0 for Mobile & Desktop Apps":
 * - GET /auth: the consent page. The test user consents at once: a 302 to the loopback
 *   redirect_uri with `code`, `state` and `scope` (or `error=access_denied` once
 *   `denyNextConsent` is set). Bad requests get a 400 page, as Google shows
 *   "Error 400: invalid_request" and never redirects.
 * - POST /token, grant_type=authorization_code: a code is single-use and lives 10 minutes;
 *   client_id and redirect_uri must be those of the consent request, client_secret the
 *   client's (form field or HTTP Basic), and code_verifier must match the code_challenge
 *   (S256 or plain). Answers access_token, expires_in, refresh_token, scope, token_type.
 * - POST /token, grant_type=refresh_token: a fresh access token.
 * Errors are Google's JSON: {"error": "invalid_grant", "error_description": "…"}.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readBody, sendJson, type Ctx } from './context.js';

const CODE_TTL_MS = 10 * 60 * 1000;
const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

export interface AuthCode {
  clientId: string;
  redirectUri: string;
  scope: string;
  challenge: string | null;
  method: 'S256' | 'plain';
  issuedAt: number;
  used?: boolean;
}

export interface OAuthState {
  /** client_id → client_secret; any client is known when unset. */
  clients?: Map<string, string>;
  codes: Map<string, AuthCode>;
  denyNextConsent?: boolean;
}

function page(ctx: Ctx, status: number, text: string): void {
  ctx.res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  ctx.res.end(`<!doctype html><title>Error ${status}</title><p>${text}</p>`);
}

/** GET /auth: validates the request like Google's consent page, then "consents". */
export function consent(ctx: Ctx): void {
  const p = ctx.url.searchParams;
  const oauth = ctx.settings.oauth;
  const clientId = p.get('client_id') ?? '';
  if (!clientId || (oauth.clients && !oauth.clients.has(clientId)))
    return page(ctx, 401, 'Error 401: invalid_client. The OAuth client was not found.');
  const redirect = URL.canParse(p.get('redirect_uri') ?? '')
    ? new URL(p.get('redirect_uri')!)
    : null;
  if (!redirect || redirect.protocol !== 'http:' || !LOOPBACK.has(redirect.hostname))
    return page(ctx, 400, 'Error 400: redirect_uri_mismatch.');
  if (p.get('response_type') !== 'code')
    return page(ctx, 400, 'Error 400: invalid_request. Invalid response_type.');
  const scope = p.get('scope') ?? '';
  if (!scope)
    return page(ctx, 400, 'Error 400: invalid_request. Missing required parameter: scope');
  const challenge = p.get('code_challenge');
  const method = p.get('code_challenge_method') ?? 'plain';
  if (method !== 'S256' && method !== 'plain')
    return page(ctx, 400, 'Error 400: invalid_request. Invalid code_challenge_method.');
  if (challenge !== null && !/^[A-Za-z0-9._~-]{43,128}$/.test(challenge))
    return page(ctx, 400, 'Error 400: invalid_request. Invalid code_challenge.');
  const answer = new URL(redirect);
  const state = p.get('state');
  if (state !== null) answer.searchParams.set('state', state);
  if (oauth.denyNextConsent) {
    oauth.denyNextConsent = false;
    answer.searchParams.set('error', 'access_denied');
  } else {
    const code = '4/0' + randomBytes(24).toString('base64url');
    oauth.codes.set(code, {
      clientId,
      redirectUri: redirect.href,
      scope,
      challenge,
      method,
      issuedAt: Date.now(),
    });
    answer.searchParams.set('code', code);
    answer.searchParams.set('scope', scope);
  }
  ctx.res.writeHead(302, { location: answer.href, 'content-length': 0 });
  ctx.res.end();
}

const oauthError = (ctx: Ctx, status: number, error: string, description: string) =>
  sendJson(ctx.res, status, { error, error_description: description });

/** The client's id and secret, from HTTP Basic or the form (RFC 6749 §2.3.1). */
function clientOf(ctx: Ctx, form: URLSearchParams): { id: string; secret: string } {
  const basic = /^Basic (\S+)$/.exec(ctx.req.headers.authorization ?? '');
  if (basic) {
    const [id = '', secret = ''] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
    return { id: decodeURIComponent(id), secret: decodeURIComponent(secret) };
  }
  return { id: form.get('client_id') ?? '', secret: form.get('client_secret') ?? '' };
}

function issue(ctx: Ctx, scope: string, withRefresh: boolean): void {
  const accessToken = 'ya29.test-' + randomBytes(16).toString('hex');
  ctx.settings.validTokens?.add(accessToken);
  const body: Record<string, unknown> = {
    access_token: accessToken,
    expires_in: 3599,
    scope,
    token_type: 'Bearer',
  };
  if (withRefresh) {
    const refresh = '1//0test-' + randomBytes(24).toString('base64url');
    ctx.settings.refreshTokens?.add(refresh);
    body['refresh_token'] = refresh;
  }
  sendJson(ctx.res, 200, body);
}

function codeGrant(ctx: Ctx, form: URLSearchParams): void {
  const oauth = ctx.settings.oauth;
  const client = clientOf(ctx, form);
  const known = oauth.clients?.get(client.id);
  if (oauth.clients && known !== client.secret)
    return oauthError(ctx, 401, 'invalid_client', 'Unauthorized');
  const code = form.get('code') ?? '';
  if (!code) return oauthError(ctx, 400, 'invalid_request', 'Missing required parameter: code');
  const grant = oauth.codes.get(code);
  if (!grant) return oauthError(ctx, 400, 'invalid_grant', 'Malformed auth code.');
  const fresh = !grant.used && Date.now() - grant.issuedAt <= CODE_TTL_MS;
  grant.used = true; // single use, also when the exchange fails
  if (!fresh) return oauthError(ctx, 400, 'invalid_grant', 'Bad Request');
  if (grant.clientId !== client.id) return oauthError(ctx, 400, 'invalid_grant', 'Bad Request');
  if (form.get('redirect_uri') !== grant.redirectUri)
    return oauthError(ctx, 400, 'redirect_uri_mismatch', 'Bad Request');
  const verifier = form.get('code_verifier');
  if (grant.challenge !== null) {
    if (!verifier) return oauthError(ctx, 400, 'invalid_grant', 'Missing code verifier.');
    const derived =
      grant.method === 'S256'
        ? createHash('sha256').update(verifier).digest('base64url')
        : verifier;
    if (derived !== grant.challenge)
      return oauthError(ctx, 400, 'invalid_grant', 'Invalid code verifier.');
  }
  issue(ctx, grant.scope, true);
}

function refreshGrant(ctx: Ctx, form: URLSearchParams): void {
  const refresh = form.get('refresh_token') ?? '';
  const known = ctx.settings.refreshTokens;
  if (!refresh || (known && !known.has(refresh)))
    return oauthError(ctx, 400, 'invalid_grant', 'Token has been expired or revoked.');
  issue(ctx, 'https://www.googleapis.com/auth/drive.file', false);
}

/** POST /token. */
export async function token(ctx: Ctx): Promise<void> {
  const form = new URLSearchParams((await readBody(ctx)).toString('utf8'));
  const grant = form.get('grant_type');
  if (grant === 'authorization_code') return codeGrant(ctx, form);
  if (grant === 'refresh_token') return refreshGrant(ctx, form);
  oauthError(ctx, 400, 'unsupported_grant_type', 'Invalid grant_type: ' + (grant ?? ''));
}
